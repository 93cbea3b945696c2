//! `localStorage` / `sessionStorage`, which may be missing or throw (storage
//! disabled, sandboxed frames): every failure reads as "not stored".

use alloc::string::String;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings;

#[wasm_bindgen]
extern "C" {
    pub type Storage;
    #[wasm_bindgen(catch, method, js_name = getItem)]
    fn get_item(this: &Storage, key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(catch, method, js_name = setItem)]
    fn set_item(this: &Storage, key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, method, js_name = removeItem)]
    fn remove_item(this: &Storage, key: &str) -> Result<(), JsValue>;
}

#[derive(Clone, Copy)]
pub enum Area {
    /// Survives tabs closing: the session id.
    Local,
    /// This tab only: reports left over from the previous page view.
    Session,
}

fn area(a: Area) -> Option<Storage> {
    // Reading the property itself throws where storage is blocked.
    let name = match a {
        Area::Local => "localStorage",
        Area::Session => "sessionStorage",
    };
    let s = bindings::global(name);
    s.is_object().then(|| s.unchecked_into())
}

pub fn get(a: Area, key: &str) -> Option<String> {
    area(a)?.get_item(key).ok().flatten()
}

/// Whether the value was stored.
pub fn set(a: Area, key: &str, value: &str) -> bool {
    area(a).is_some_and(|s| s.set_item(key, value).is_ok())
}

pub fn remove(a: Area, key: &str) {
    if let Some(s) = area(a) {
        let _ = s.remove_item(key);
    }
}
