//! The page catalog: the caps on sites and pages (`max_sites`,
//! `max_pages_per_site`, `max_pages`), applied as the SQLite engine applies
//! them (`store/sqlite/catalog.rs`).
//!
//! The admitted pages of all collectors are rows of the shared table
//! `pages (site, page, first_ms)` (a `ReplacingMergeTree` ordered by
//! `(site, page)`; a site is admitted with its first page, so the sites are
//! the distinct sites of `pages`). Each collector keeps a copy in memory,
//! loaded before the store is ready and refreshed every
//! [`super::ClickHouseOptions::catalog_refresh_ms`], and decides on it
//! synchronously in `insert`:
//! - a beacon of a new site past `max_sites` (0: no limit) refuses the whole
//!   call with [`StoreError::TooManySites`] (nothing of it is stored);
//! - a new page past the site's `max_pages_per_site`, or past `max_pages`
//!   pages of all sites together (0: no limit; the `(other)` pages count),
//!   is stored under the site's [`OTHER_PAGE`] page, itself admitted past
//!   the caps (one per site), as SQLite does. A `max_pages_per_site` of 0
//!   (refused by the configuration) would send every page to `(other)`, as
//!   in SQLite.
//!
//! A newly admitted page joins the local copy at once and its row goes
//! into `pages` with the batch that first carries it (before the batch's
//! reports; into the spill with them when ClickHouse is down), so the
//! other collectors' next refresh sees it. The refresh only adds pages
//! (none leaves the catalog). Across several collectors the caps are
//! therefore approximate: each collector may admit new sites and pages
//! before it sees those the others admitted, so a cap may be overshot by
//! what the collectors admit within one refresh interval (plus the batch
//! interval), at most the cap's room times the number of collectors.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::store::{NewBeacon, StoreError, OTHER_PAGE};

/// One row of `pages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub(super) struct PageRow {
    pub site: String,
    pub page: String,
    /// When a collector admitted it.
    pub first_ms: i64,
}

/// The caps (see [`super::ClickHouseOptions`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Caps {
    pub max_pages_per_site: u32,
    pub max_pages: u32,
    pub max_sites: u32,
}

/// The admitted sites and pages, as this collector knows them.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    /// Site to its page keys ([`OTHER_PAGE`] included once admitted).
    sites: HashMap<String, HashSet<String>>,
    /// Pages of all sites, `(other)` pages included.
    total: usize,
}

impl Catalog {
    /// Adds pages (from `pages`, or admitted here); known ones are skipped.
    pub fn merge(&mut self, pages: impl IntoIterator<Item = (String, String)>) {
        for (site, page) in pages {
            if self.sites.entry(site).or_default().insert(page) {
                self.total += 1;
            }
        }
    }

    pub fn sites(&self) -> usize {
        self.sites.len()
    }

    pub fn pages(&self) -> usize {
        self.total
    }

    /// Admits the beacons' sites and pages under the caps, rewriting the
    /// page of a beacon past a page cap to [`OTHER_PAGE`]; the pages newly
    /// admitted (to be written to `pages`). A new site past `max_sites`
    /// refuses them all, the catalog unchanged.
    pub fn admit(&mut self, caps: Caps, beacons: &mut [NewBeacon], now_ms: i64) -> Result<Vec<PageRow>, StoreError> {
        // All or none: the sites first.
        let mut new_sites: Vec<&str> = Vec::new();
        for b in beacons.iter() {
            if self.sites.contains_key(&b.site) || new_sites.contains(&b.site.as_str()) {
                continue;
            }
            if caps.max_sites > 0 && self.sites.len() + new_sites.len() >= caps.max_sites as usize {
                return Err(StoreError::TooManySites {
                    site: b.site.clone(),
                    limit: caps.max_sites,
                });
            }
            new_sites.push(&b.site);
        }
        let mut added = Vec::new();
        for b in beacons.iter_mut() {
            if let Some(page) = self.page(caps, &b.site, &b.page, now_ms, &mut added) {
                b.page = page;
            }
        }
        Ok(added)
    }

    /// Admits one page; `Some(OTHER_PAGE)` when it is past a cap.
    fn page(&mut self, caps: Caps, site: &str, page: &str, now_ms: i64, added: &mut Vec<PageRow>) -> Option<String> {
        let Catalog { sites, total } = self;
        let pages = sites.entry(site.to_owned()).or_default();
        if pages.contains(page) {
            return None;
        }
        let known = pages.len() - usize::from(pages.contains(OTHER_PAGE));
        let over_total = caps.max_pages > 0 && *total >= caps.max_pages as usize;
        let page = if page != OTHER_PAGE && (known >= caps.max_pages_per_site as usize || over_total) {
            OTHER_PAGE
        } else {
            page
        };
        if pages.insert(page.to_owned()) {
            *total += 1;
            added.push(PageRow {
                site: site.to_owned(),
                page: page.to_owned(),
                first_ms: now_ms,
            });
        }
        (page == OTHER_PAGE).then(|| OTHER_PAGE.to_owned())
    }
}

/// Every page in `pages`.
pub(super) async fn load(client: &clickhouse::Client) -> Result<Vec<(String, String)>, clickhouse::error::Error> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Key {
        site: String,
        page: String,
    }
    let keys: Vec<Key> = client
        .query("SELECT site, page FROM pages GROUP BY site, page")
        .fetch_all()
        .await?;
    Ok(keys.into_iter().map(|k| (k.site, k.page)).collect())
}

/// Writes newly admitted pages (a page written twice is one row once
/// merged, and the reads group).
pub(super) async fn write(client: &clickhouse::Client, pages: &[PageRow]) -> Result<(), clickhouse::error::Error> {
    if pages.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<PageRow>("pages").await?;
    for p in pages {
        insert.write(p).await?;
    }
    insert.end().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(site: &str, page: &str) -> NewBeacon {
        NewBeacon {
            site: site.into(),
            page: page.into(),
            form_factor: None,
            page_view_id: None,
            session_id: None,
            received_at_ms: 0,
            reports: Vec::new(),
        }
    }

    fn caps(per_site: u32, all: u32, sites: u32) -> Caps {
        Caps {
            max_pages_per_site: per_site,
            max_pages: all,
            max_sites: sites,
        }
    }

    #[test]
    fn pages_past_a_cap_go_to_other_and_a_site_past_its_cap_refuses_the_call() {
        let mut c = Catalog::default();
        let mut b = vec![
            beacon("a", "/1"),
            beacon("a", "/2"),
            beacon("a", "/3"),
            beacon("b", "/1"),
        ];
        let added = c.admit(caps(2, 0, 2), &mut b, 7).unwrap();
        let pages: Vec<&str> = b.iter().map(|b| b.page.as_str()).collect();
        assert_eq!(pages, ["/1", "/2", OTHER_PAGE, "/1"]);
        assert_eq!(added.len(), 4, "a/1, a/2, a/(other), b/1");
        assert!(added.iter().all(|p| p.first_ms == 7));
        // A known site with a new site in the same call: all refused.
        let mut b = vec![beacon("a", "/9"), beacon("c", "/1")];
        let err = c.admit(caps(2, 0, 2), &mut b, 8).unwrap_err();
        assert!(matches!(err, StoreError::TooManySites { limit: 2, .. }), "{err}");
        assert_eq!((c.sites(), c.pages()), (2, 4), "unchanged");
        // Known pages are not added again.
        let mut b = vec![beacon("a", "/1"), beacon("a", "/4")];
        assert!(c.admit(caps(2, 0, 2), &mut b, 9).unwrap().is_empty());
        assert_eq!(b[1].page, OTHER_PAGE);
    }

    #[test]
    fn zero_is_no_limit_for_sites_and_pages_of_all_sites() {
        let mut c = Catalog::default();
        let mut b: Vec<NewBeacon> = (0..50).map(|i| beacon(&format!("s{i}"), "/")).collect();
        assert_eq!(c.admit(caps(10, 0, 0), &mut b, 0).unwrap().len(), 50);
        assert!(b.iter().all(|b| b.page == "/"));
    }

    #[test]
    fn the_cap_of_all_sites_counts_other_pages_as_sqlite_does() {
        let mut c = Catalog::default();
        let mut b: Vec<NewBeacon> = [
            ("a", "/1"),
            ("a", "/2"),
            ("b", "/1"),
            ("b", "/2"),
            ("a", "/3"),
            ("a", "/1"),
        ]
        .iter()
        .map(|(s, p)| beacon(s, p))
        .collect();
        c.admit(caps(10, 3, 0), &mut b, 0).unwrap();
        let pages: Vec<&str> = b.iter().map(|b| b.page.as_str()).collect();
        assert_eq!(pages, ["/1", "/2", "/1", OTHER_PAGE, OTHER_PAGE, "/1"]);
        assert_eq!(c.pages(), 5);
        // Pages another collector admitted count too.
        c.merge([("c".to_string(), "/1".to_string())]);
        assert_eq!((c.sites(), c.pages()), (3, 6));
    }
}
