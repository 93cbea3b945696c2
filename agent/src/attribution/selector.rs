//! The reference's `getSelector(node)`: from the node up to the nearest
//! ancestor with an id (or the document), each step `#id` or the tag name
//! with its classes sorted, joined by `>`, at most 100 UTF-16 code units.

/// The parts of a DOM node the selector reads.
pub trait SelectorNode: Sized {
    /// `nodeType` (1 element, 3 text, 9 document, 11 fragment ...).
    fn node_type(&self) -> u16;
    /// `nodeName` (`DIV`, `#text`, `svg` ...).
    fn node_name(&self) -> String;
    /// The element's `id`; empty for none and for non-elements.
    fn id(&self) -> String;
    /// The element's `classList`; empty for non-elements.
    fn classes(&self) -> Vec<String>;
    /// `parentNode`.
    fn parent(&self) -> Option<Self>;
    /// JS `toLowerCase()` (the browser's own, in the page: Rust's
    /// Unicode case tables would cost the wasm 30 KB).
    fn lower(s: &str) -> String {
        s.to_lowercase()
    }
    /// JS `toUpperCase()`.
    fn upper(s: &str) -> String {
        s.to_uppercase()
    }
}

/// The longest selector, in UTF-16 code units (JS string length).
pub const MAX_LEN: usize = 100;

fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `getName`: elements in lower case, other nodes in upper case without
/// the leading `#`.
fn name<N: SelectorNode>(node: &N) -> String {
    let name = node.node_name();
    if node.node_type() == 1 {
        N::lower(&name)
    } else {
        let upper = N::upper(&name);
        upper.strip_prefix('#').map(Into::into).unwrap_or(upper)
    }
}

/// The selector of `node`; an empty string for none. Where the walk meets
/// a missing parent (a detached node, a shadow root) it ends, keeping what
/// it has, as the reference's `try` does.
pub fn selector<N: SelectorNode>(node: Option<N>) -> String {
    let mut sel = String::new();
    let mut node = node;
    while let Some(n) = node {
        if n.node_type() == 9 {
            break;
        }
        let id = n.id();
        let part = if id.is_empty() {
            let mut classes = n.classes();
            // Array.prototype.sort: by UTF-16 code units.
            classes.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let mut part = name(&n);
            for c in classes {
                part.push('.');
                part.push_str(&c);
            }
            part
        } else {
            ["#", &id].concat()
        };
        if js_len(&sel) + js_len(&part) > MAX_LEN - 1 {
            return if sel.is_empty() { part } else { sel };
        }
        sel = if sel.is_empty() {
            part
        } else {
            [part.as_str(), ">", &sel].concat()
        };
        if !id.is_empty() {
            break;
        }
        node = n.parent();
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    struct N {
        kind: u16,
        name: &'static str,
        id: &'static str,
        classes: Vec<&'static str>,
        parent: Option<Rc<N>>,
    }

    #[derive(Clone)]
    struct R(Rc<N>);

    impl SelectorNode for R {
        fn node_type(&self) -> u16 {
            self.0.kind
        }
        fn node_name(&self) -> String {
            self.0.name.into()
        }
        fn id(&self) -> String {
            self.0.id.into()
        }
        fn classes(&self) -> Vec<String> {
            self.0.classes.iter().map(|c| c.to_string()).collect()
        }
        fn parent(&self) -> Option<R> {
            self.0.parent.clone().map(R)
        }
    }

    fn node(kind: u16, name: &'static str, id: &'static str, classes: &[&'static str], parent: Option<&R>) -> R {
        R(Rc::new(N {
            kind,
            name,
            id,
            classes: classes.to_vec(),
            parent: parent.map(|p| p.0.clone()),
        }))
    }

    fn tree() -> (R, R, R) {
        let doc = node(9, "#document", "", &[], None);
        let html = node(1, "HTML", "", &[], Some(&doc));
        let body = node(1, "BODY", "", &["page", "a-b"], Some(&html));
        (doc, html, body)
    }

    #[test]
    fn walks_up_to_the_document_with_sorted_classes() {
        let (_, _, body) = tree();
        let div = node(1, "DIV", "", &["z", "hero", "B"], Some(&body));
        let img = node(1, "IMG", "", &[], Some(&div));
        assert_eq!(selector(Some(img)), "html>body.a-b.page>div.B.hero.z>img");
    }

    #[test]
    fn stops_at_the_nearest_id() {
        let (_, _, body) = tree();
        let main = node(1, "MAIN", "content", &["x"], Some(&body));
        let p = node(1, "P", "", &[], Some(&main));
        assert_eq!(selector(Some(p)), "#content>p");
        assert_eq!(selector(Some(main)), "#content");
    }

    #[test]
    fn text_nodes_upper_case_without_hash_and_svg_names_lower_case() {
        let (_, _, body) = tree();
        let h1 = node(1, "H1", "title", &[], Some(&body));
        let text = node(3, "#text", "", &[], Some(&h1));
        assert_eq!(selector(Some(text)), "#title>TEXT");
        let svg = node(1, "svg", "", &[], Some(&h1));
        let fo = node(1, "foreignObject", "", &[], Some(&svg));
        assert_eq!(selector(Some(fo)), "#title>svg>foreignobject");
    }

    #[test]
    fn none_detached_and_shadow_roots() {
        assert_eq!(selector::<R>(None), "");
        let detached = node(1, "SPAN", "", &["a"], None);
        assert_eq!(selector(Some(detached)), "span.a");
        let shadow = node(11, "#document-fragment", "", &[], None);
        let b = node(1, "B", "", &[], Some(&shadow));
        assert_eq!(selector(Some(b)), "DOCUMENT-FRAGMENT>b");
        let (doc, _, _) = tree();
        assert_eq!(selector(Some(doc)), "");
    }

    #[test]
    fn at_most_100_utf16_units_keeping_the_nearest_parts() {
        let (_, _, body) = tree();
        // 98 units: fits with nothing before it; with its parents it does not.
        let long: &'static str = Box::leak("c".repeat(96).into_boxed_str());
        let div = node(1, "DIV", "", &[], Some(&body));
        let el = node(1, "I", "", &[long], Some(&div));
        let sel = selector(Some(el));
        assert_eq!(sel, ["i.", long].concat());
        assert_eq!(sel.len(), 98);
        // A single part over the limit is kept whole.
        let longer: &'static str = Box::leak("d".repeat(120).into_boxed_str());
        let el = node(1, "I", "", &[longer], Some(&div));
        assert_eq!(selector(Some(el)), ["i.", longer].concat());
        // The limit counts UTF-16 units: 49 astral characters are 98 units.
        let astral: &'static str = Box::leak("😀".repeat(49).into_boxed_str());
        let with_id = node(1, "S", astral, &[], None);
        assert_eq!(selector(Some(with_id)), ["#", astral].concat());
        let child = node(1, "EM", "", &[], Some(&node(1, "S", astral, &[], None)));
        assert_eq!(selector(Some(child)), "em", "#+98 units + > + em is over 99");
    }

    #[test]
    fn classes_sort_by_utf16_code_units() {
        // U+1F600 is 0xD83D 0xDE00 in UTF-16, before U+FF21 (0xFF21); in
        // UTF-8 (and by code point) it would come after.
        let el = node(1, "P", "", &["Ａ", "😀"], None);
        assert_eq!(selector(Some(el)), "p.😀.Ａ");
    }
}
