//! The device class of a beacon, as the Chrome UX Report splits its data.

use beacon::FormFactor;

/// From User-Agent Client Hints' `mobile` where the browser has them, and
/// the User-Agent string otherwise (and to tell tablets apart: Client Hints
/// report tablets as not mobile).
pub fn form_factor(ua_ch_mobile: Option<bool>, user_agent: &str) -> FormFactor {
    let ua = user_agent;
    let has = |s: &str| crate::text::contains(ua, s);
    if ua_ch_mobile == Some(true) {
        return FormFactor::Phone;
    }
    if has("iPad") || has("Tablet") || (has("Android") && !has("Mobile")) || (has("Macintosh") && has("Mobile/")) {
        return FormFactor::Tablet;
    }
    if ua_ch_mobile.is_none() && (has("Mobi") || has("iPhone") || has("iPod") || has("Windows Phone")) {
        return FormFactor::Phone;
    }
    FormFactor::Desktop
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";
    const GALAXY_TAB: &str = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    const FIREFOX_ANDROID: &str = "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0";

    #[test]
    fn client_hints_win_for_phones() {
        assert_eq!(form_factor(Some(true), MAC), FormFactor::Phone);
        assert_eq!(form_factor(Some(false), MAC), FormFactor::Desktop);
        assert_eq!(form_factor(Some(true), PIXEL), FormFactor::Phone);
    }

    #[test]
    fn user_agent_classifies_when_hints_are_missing() {
        assert_eq!(form_factor(None, PIXEL), FormFactor::Phone);
        assert_eq!(form_factor(None, IPHONE), FormFactor::Phone);
        assert_eq!(form_factor(None, FIREFOX_ANDROID), FormFactor::Phone);
        assert_eq!(form_factor(None, IPAD), FormFactor::Tablet);
        assert_eq!(form_factor(None, GALAXY_TAB), FormFactor::Tablet);
        assert_eq!(form_factor(None, MAC), FormFactor::Desktop);
        assert_eq!(form_factor(None, ""), FormFactor::Desktop);
    }

    #[test]
    fn tablets_report_not_mobile_in_client_hints() {
        assert_eq!(form_factor(Some(false), GALAXY_TAB), FormFactor::Tablet);
    }
}
