//! The Microsoft Graph source: users, groups and organisational contacts of an Entra ID
//! tenant, read with app-only credentials, as directory entries under Active Directory's
//! attribute names ([`mapping`]), so that the model and the rules treat them like LDAP
//! entries.
//!
//! The collections are read in parallel and every page to its end; any error ends the read
//! (and the run ships nothing). Groups the rules name in `member_of` are resolved by their
//! members (`/groups/{id}/members`, nested groups followed), so a rule works as with
//! `memberOf` from AD, and only those groups cost requests.

pub mod client;
pub mod config;
pub mod mapping;
pub mod token;

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use serde::Deserialize;

use self::client::{Graph, Page};
use self::config::GraphConfig;
use self::mapping::{Collection, GraphObject};
use super::{Entry, Request, SourceStats};

/// Pages in a row without an object before the read is refused (a next link that never ends).
const EMPTY_PAGES: u32 = 100;

/// Reads the tenant. Entries go to `sink` as they arrive.
pub fn read(
    config: &GraphConfig,
    request: &Request,
    sink: &mut dyn FnMut(Entry),
) -> anyhow::Result<SourceStats> {
    let graph = Graph::connect(config)?;
    let token = graph.token()?;
    let mut stats = SourceStats {
        origin: format!("{} (tenant {})", config.graph_url, config.tenant_id),
        signed_in: Some(format!(
            "signed in with {}; token valid for {} min",
            graph.credential().describe(),
            token.expires_in.as_secs() / 60
        )),
        ..SourceStats::default()
    };
    drop(token);
    let mut counts: HashMap<Collection, (u64, u64)> = HashMap::new();
    let mut memberships = Memberships::default();
    let mut streamed = Collection::ALL.to_vec();
    let mut groups = Vec::new();
    if !request.groups.is_empty() {
        // The named groups' members must be known before their members are handed on.
        let (n, dup) = list(&graph, config, Collection::Groups, request, &mut |e| {
            groups.push(e);
            Ok(())
        })
        .map_err(|e| e.context("reading /groups from Microsoft Graph"))?;
        counts.insert(Collection::Groups, (n, dup));
        memberships = members(&graph, config, &groups, request)?;
        streamed.retain(|c| *c != Collection::Groups);
    }
    counts.extend(stream(
        &graph,
        config,
        &streamed,
        request,
        &memberships,
        sink,
    )?);
    for mut e in groups {
        memberships.apply(&mut e);
        sink(e);
    }
    for c in Collection::ALL {
        let (n, dup) = counts.get(&c).copied().unwrap_or_default();
        stats.entries += n;
        stats.duplicate_entries += dup;
        stats.per_base.push((c.path().to_owned(), n));
        compare_count(&graph, c, n);
    }
    Ok(stats)
}

/// Lists `collections` in parallel, each entry handed to `sink` with its named groups; any
/// failure ends them all. Returns (objects, objects sent twice) per collection.
fn stream(
    graph: &Graph,
    config: &GraphConfig,
    collections: &[Collection],
    request: &Request,
    memberships: &Memberships,
    sink: &mut dyn FnMut(Entry),
) -> anyhow::Result<HashMap<Collection, (u64, u64)>> {
    let (tx, rx) = mpsc::sync_channel::<Entry>(1024);
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = collections
            .iter()
            .map(|&c| {
                let tx = tx.clone();
                let worker = move || {
                    let mut send = |mut e: Entry| {
                        memberships.apply(&mut e);
                        tx.send(e).map_err(|_| anyhow!("the reader stopped"))
                    };
                    let r = list(graph, config, c, request, &mut send);
                    if r.is_err() {
                        graph.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    r
                };
                (c, s.spawn(worker))
            })
            .collect();
        drop(tx);
        for entry in rx {
            sink(entry);
        }
        workers
            .into_iter()
            .map(|(c, w)| {
                let r = w.join();
                (
                    c,
                    r.unwrap_or_else(|_| Err(anyhow!("the reader of this collection failed"))),
                )
            })
            .collect::<Vec<_>>()
    });
    let mut counts = HashMap::new();
    // The first real error, not "stopped: another collection failed".
    let mut failures: Vec<(Collection, anyhow::Error)> = Vec::new();
    for (c, r) in results {
        match r {
            Ok(n) => {
                counts.insert(c, n);
            }
            Err(e) => failures.push((c, e)),
        }
    }
    failures.sort_by_key(|(_, e)| e.to_string().starts_with("stopped"));
    match failures.into_iter().next() {
        Some((c, e)) => Err(e.context(format!("reading /{} from Microsoft Graph", c.path()))),
        None => Ok(counts),
    }
}

/// Lists one collection to its end; returns (objects, objects sent twice).
fn list(
    graph: &Graph,
    config: &GraphConfig,
    collection: Collection,
    request: &Request,
    sink: &mut dyn FnMut(Entry) -> anyhow::Result<()>,
) -> anyhow::Result<(u64, u64)> {
    let what = format!("/{}", collection.path());
    let mut url = format!(
        "{}/v1.0/{}?$select={}&$top={}",
        graph.base,
        collection.path(),
        mapping::select(collection, &request.attributes),
        config.page_size
    );
    let mut seen_links = HashSet::new();
    let mut ids = HashSet::new();
    let (mut objects, mut duplicates, mut empty) = (0u64, 0u64, 0u32);
    loop {
        let page: Page<GraphObject> = graph.get(&url, &what, collection.permission())?;
        empty = if page.value.is_empty() { empty + 1 } else { 0 };
        for object in page.value {
            if !ids.insert(object.id.to_ascii_lowercase()) {
                duplicates += 1;
                continue;
            }
            let id = object.id.clone();
            let entry = mapping::to_entry(collection, object).map_err(|e| {
                anyhow!("object {id} in {what}: {e}; Graph documents another shape")
            })?;
            objects += 1;
            sink(entry)?;
        }
        match page.next_link {
            None => break,
            Some(next) => {
                if empty >= EMPTY_PAGES {
                    bail!("Graph sent {EMPTY_PAGES} pages of {what} in a row without an object; refused (a listing that never ends)");
                }
                if !seen_links.insert(next.clone()) {
                    bail!("Graph sent a next link for {what} a second time; refused (the listing would never end)");
                }
                url = next;
            }
        }
    }
    if duplicates > 0 {
        tracing::warn!("Graph sent {duplicates} objects of {what} more than once (each kept once)");
    }
    Ok((objects, duplicates))
}

/// `$count` (eventually consistent) against what was read: a large difference is worth a
/// look, not a failure (the listing is the truth of this moment).
fn compare_count(graph: &Graph, collection: Collection, read: u64) {
    let url = format!("{}/v1.0/{}/$count", graph.base, collection.path());
    let what = format!("/{}/$count", collection.path());
    let counted = graph
        .get_text(
            &url,
            &what,
            collection.permission(),
            Some(("ConsistencyLevel", "eventual")),
        )
        .and_then(|t| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("{t:?} is not a count"))
        });
    match counted {
        Ok(n) if n.abs_diff(read) > (n / 100).max(10) => tracing::warn!(
            "Graph counts {n} objects in /{} but the listing gave {read}; if this persists, \
             compare with the Entra admin center",
            collection.path()
        ),
        Ok(_) => {}
        Err(e) => tracing::info!(
            "Graph's count of /{} is unavailable: {e:#}",
            collection.path()
        ),
    }
}

/// Member object id → the DNs of the named groups (and the groups nested in them) it is a
/// direct member of, as `memberOf` would list them.
#[derive(Default)]
struct Memberships(HashMap<String, Vec<Arc<str>>>);

impl Memberships {
    fn apply(&self, entry: &mut Entry) {
        let Some(id) = entry.first_text("msds-aadobjectid") else {
            return;
        };
        if let Some(groups) = self.0.get(id).cloned() {
            for g in groups {
                entry.push("memberOf", g.as_bytes().to_vec());
            }
        }
    }
}

#[derive(Deserialize)]
struct Member {
    id: String,
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
}

/// Resolves the groups the rules name (by display name, mail, object id or DN) and reads
/// their members, following nested groups.
fn members(
    graph: &Graph,
    config: &GraphConfig,
    groups: &[Entry],
    request: &Request,
) -> anyhow::Result<Memberships> {
    let by_id: HashMap<&str, &Entry> = groups
        .iter()
        .filter_map(|g| Some((g.first_text("msds-aadobjectid")?, g)))
        .collect();
    let mut todo: Vec<&str> = Vec::new();
    for target in &request.groups {
        let named: Vec<&str> = by_id
            .iter()
            .filter(|(id, g)| {
                **id == target.as_str()
                    || g.dn.eq_ignore_ascii_case(target)
                    || g.texts("displayname").any(|n| n.to_lowercase() == *target)
                    || g.texts("mail").any(|m| m.to_lowercase() == *target)
            })
            .map(|(id, _)| *id)
            .collect();
        if named.is_empty() {
            tracing::warn!("the rules name the group {target:?}, which is not in the tenant's /groups (by display name, mail or id)");
        }
        todo.extend(named);
    }
    let mut done = HashSet::new();
    let mut out: HashMap<String, Vec<Arc<str>>> = HashMap::new();
    while let Some(id) = todo.pop() {
        if !done.insert(id) {
            continue;
        }
        let dn: Arc<str> = by_id[id].dn.as_str().into();
        let what = format!("the members of group {}", by_id[id].dn);
        let mut url = format!(
            "{}/v1.0/groups/{id}/members?$select=id&$top={}",
            graph.base, config.page_size
        );
        let mut seen_links = HashSet::new();
        loop {
            let page: Page<Member> = graph.get(&url, &what, "Group.Read.All")?;
            for m in page.value {
                let mid = m.id.to_ascii_lowercase();
                if m.odata_type.as_deref() == Some("#microsoft.graph.group") {
                    if let Some((known, _)) = by_id.get_key_value(mid.as_str()) {
                        todo.push(known);
                    }
                }
                let list = out.entry(mid).or_default();
                if !list.contains(&dn) {
                    list.push(dn.clone());
                }
            }
            match page.next_link {
                None => break,
                Some(next) if seen_links.insert(next.clone()) => url = next,
                Some(_) => bail!("Graph sent a next link for {what} a second time; refused"),
            }
        }
    }
    Ok(Memberships(out))
}
