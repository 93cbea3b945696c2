//! Sites and pages: their ids, the page cap, and the catalog kept in memory.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::SqliteOptions;
use crate::store::{StoreError, OTHER_PAGE};

#[derive(Clone, Debug, Default)]
pub(super) struct Catalog {
    pub(super) by_name: HashMap<String, u32>,
    pub(super) sites: HashMap<u32, SiteEntry>,
    /// Page id to (site id, page key).
    pub(super) pages: HashMap<u32, (u32, String)>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct SiteEntry {
    pub(super) name: String,
    /// Page keys (not the overflow page) to ids.
    pub(super) pages: HashMap<String, u32>,
    /// The [`OTHER_PAGE`] page, once needed.
    pub(super) other: Option<u32>,
}

impl SiteEntry {
    pub(super) fn page_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pages.values().copied().chain(self.other)
    }
}

impl Catalog {
    pub(super) fn add_site(&mut self, id: u32, name: String) {
        self.by_name.insert(name.clone(), id);
        self.sites.entry(id).or_default().name = name;
    }

    pub(super) fn add_page(&mut self, id: u32, site: u32, page: String) {
        let Some(entry) = self.sites.get_mut(&site) else {
            tracing::warn!(page_id = id, site_id = site, "page of an unknown site, skipped");
            return;
        };
        if page == OTHER_PAGE {
            entry.other = Some(id);
        } else {
            entry.pages.insert(page.clone(), id);
        }
        self.pages.insert(id, (site, page));
    }

    pub(super) fn remove_page(&mut self, id: u32) {
        if let Some((site, page)) = self.pages.remove(&id) {
            if let Some(entry) = self.sites.get_mut(&site) {
                if entry.other == Some(id) {
                    entry.other = None;
                } else {
                    entry.pages.remove(&page);
                }
            }
        }
    }

    pub(super) fn remove_site(&mut self, id: u32) {
        if let Some(entry) = self.sites.remove(&id) {
            self.by_name.remove(&entry.name);
        }
    }

    pub(super) fn page_id(&self, site: u32, page: &str) -> Option<u32> {
        let entry = self.sites.get(&site)?;
        if page == OTHER_PAGE {
            entry.other
        } else {
            entry.pages.get(page).copied()
        }
    }
}

/// Sites and pages created by the transaction being written.
#[derive(Default)]
pub(super) struct NewIds {
    pub(super) sites: Vec<(u32, String)>,
    pub(super) site_ids: HashMap<String, u32>,
    pub(super) pages: Vec<(u32, u32, String)>,
    pub(super) page_ids: HashMap<(u32, String), u32>,
    pub(super) new_pages_per_site: HashMap<u32, u32>,
}

pub(super) fn load_catalog(conn: &Connection) -> Result<Catalog, StoreError> {
    let mut catalog = Catalog::default();
    let mut stmt = conn.prepare("SELECT id, site FROM sites")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        catalog.add_site(row.get(0)?, row.get(1)?);
    }
    let mut stmt = conn.prepare("SELECT id, site_id, page FROM pages")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        catalog.add_page(row.get(0)?, row.get(1)?, row.get(2)?);
    }
    Ok(catalog)
}

pub(super) fn site_id(
    tx: &Connection,
    catalog: &Catalog,
    options: &SqliteOptions,
    new_ids: &mut NewIds,
    site: &str,
) -> Result<Result<u32, StoreError>, StoreError> {
    if let Some(&id) = catalog.by_name.get(site).or_else(|| new_ids.site_ids.get(site)) {
        return Ok(Ok(id));
    }
    let count = catalog.sites.len() + new_ids.sites.len();
    if options.max_sites > 0 && count >= options.max_sites as usize {
        return Ok(Err(StoreError::TooManySites {
            site: site.to_owned(),
            limit: options.max_sites,
        }));
    }
    let id: u32 = tx
        .prepare_cached("INSERT INTO sites (site) VALUES (?1) RETURNING id")?
        .query_row([site], |r| r.get(0))?;
    new_ids.sites.push((id, site.to_owned()));
    new_ids.site_ids.insert(site.to_owned(), id);
    Ok(Ok(id))
}

/// The page's id; past the site's page cap or the cap on pages of all
/// sites, the site's [`OTHER_PAGE`] id.
pub(super) fn page_id(
    tx: &Connection,
    catalog: &Catalog,
    options: &SqliteOptions,
    new_ids: &mut NewIds,
    site: u32,
    page: &str,
) -> Result<u32, StoreError> {
    if let Some(id) = catalog.page_id(site, page) {
        return Ok(id);
    }
    let key = (site, page.to_owned());
    if let Some(&id) = new_ids.page_ids.get(&key) {
        return Ok(id);
    }
    let known = catalog.sites.get(&site).map_or(0, |s| s.pages.len());
    let added = new_ids.new_pages_per_site.get(&site).copied().unwrap_or(0) as usize;
    // Every page costs memory: past either cap, the site's `(other)`.
    let all = catalog.pages.len() + new_ids.pages.len();
    let over_total = options.max_pages > 0 && all >= options.max_pages as usize;
    if page != OTHER_PAGE && (known + added >= options.max_pages_per_site as usize || over_total) {
        return page_id(tx, catalog, options, new_ids, site, OTHER_PAGE);
    }
    let id: u32 = tx
        .prepare_cached("INSERT INTO pages (site_id, page) VALUES (?1, ?2) RETURNING id")?
        .query_row(params![site, page], |r| r.get(0))?;
    new_ids.pages.push((id, site, page.to_owned()));
    new_ids.page_ids.insert(key, id);
    if page != OTHER_PAGE {
        *new_ids.new_pages_per_site.entry(site).or_default() += 1;
    }
    Ok(id)
}
