//! Counts the fields serde skips while deserializing a value.
//!
//! A derived `Deserialize` skips a field it does not know by deserializing
//! its value as [`serde::de::IgnoredAny`], and nothing else asks for
//! `deserialize_ignored_any`. So a deserializer that counts those calls,
//! and wraps every nested value so that nested objects are counted too,
//! counts unknown fields. Unlike `serde_ignored` it does not build the
//! path of each field, which cost a `String` per key of every beacon.
//!
//! Enum contents are not wrapped: the beacon's enums are plain strings.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deserializes a `T` from `deserializer`, with how many fields it skipped.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<(T, u32), D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    let count = Cell::new(0);
    let value = T::deserialize(Counting {
        inner: deserializer,
        count: &count,
    })?;
    Ok((value, count.get()))
}

struct Counting<'c, D> {
    inner: D,
    count: &'c Cell<u32>,
}

/// A visitor whose nested values are wrapped in [`Counting`].
struct Wrap<'c, V> {
    inner: V,
    count: &'c Cell<u32>,
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* Wrap { inner: visitor, count: self.count })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Counting<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(),
        deserialize_option(), deserialize_unit(), deserialize_seq(), deserialize_map(),
        deserialize_identifier(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.count.set(self.count.get().saturating_add(1));
        self.inner.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char),
        visit_str(&str), visit_borrowed_str(&'de str), visit_string(String),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Counting {
            inner: d,
            count: self.count,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Counting {
            inner: d,
            count: self.count,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Wrap {
            inner: seq,
            count: self.count,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap {
            inner: map,
            count: self.count,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap {
            inner: seed,
            count: self.count,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    /// Keys are identifiers: nothing in them is skipped.
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Wrap {
            inner: seed,
            count: self.count,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.inner.deserialize(Counting {
            inner: d,
            count: self.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        list: Vec<Inner>,
    }

    fn count(json: &str) -> (Outer, u32) {
        let mut de = serde_json::Deserializer::from_str(json);
        let out = deserialize(&mut de).unwrap();
        de.end().unwrap();
        out
    }

    #[test]
    fn counts_skipped_fields_at_every_depth() {
        let (o, n) = count(r#"{"name":"x","list":[{"a":1},{"a":2,"b":"y"}]}"#);
        assert_eq!(n, 0);
        assert_eq!(o.list[1].b.as_deref(), Some("y"));
        // One at the top (its nested content is one field), one inside an
        // Option, two inside list elements.
        let json = r#"{"extra":[1,{"deep":{"x":2}}],"name":"x","inner":{"a":1,"zz":null},
            "list":[{"a":1,"q":"w"},{"r":{},"a":2}]}"#;
        let (o, n) = count(json);
        assert_eq!(n, 4);
        assert_eq!(o.inner, Some(Inner { a: 1, b: None }));
        assert_eq!(o.list.len(), 2);
    }

    #[test]
    fn errors_pass_through() {
        let mut de = serde_json::Deserializer::from_str(r#"{"name":1,"list":[]}"#);
        let err = deserialize::<_, Outer>(&mut de).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
