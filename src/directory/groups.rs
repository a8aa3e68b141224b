//! A user's groups, by the configured strategy.
//!
//! Every group search is paged (RFC 2696), so a user in more groups than the server's size
//! limit still gets all of them. Anything short of a complete answer fails the login rather
//! than yielding fewer groups: a missing group could let someone past an `access.deny` rule.
//!
//! Nested groups are followed level by level with one search per level (the DNs found at one
//! level are the members searched for at the next), at most `max_depth` levels, each group
//! counted once however many paths lead to it (so cycles end). Groups are compared by
//! normalised DN, so `CN=Backend,OU=Groups` and `cn=backend,ou=groups` are one group.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::adapters::PagedResults;
use ldap3::{Ldap, SearchEntry};

use super::{first_value, ldap_scope, DirectoryError};
use crate::config::{GroupConfig, Nesting, SearchScope, Strategy};
use crate::group_expr::fold;
use crate::ldap_syntax::dn;
use crate::ldap_syntax::filter::{in_chain_filter, member_filter, posix_filter};
use crate::metrics::{Metrics, Operation};

/// Members asked for in one filter when following nesting, to keep filters a sane size.
const TARGETS_PER_SEARCH: usize = 64;

/// What a group search needs to know about the user.
pub struct Member<'a> {
    pub dn: &'a str,
    pub username: &'a str,
    pub entry: &'a SearchEntry,
}

/// The names of the groups `member` is in, sorted, each once.
pub async fn resolve(
    cfg: &GroupConfig,
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    member: &Member<'_>,
) -> Result<Vec<String>, DirectoryError> {
    let mut names = match &cfg.strategy {
        Strategy::None => Vec::new(),
        Strategy::Member { attributes } => match cfg.nesting {
            Nesting::InChain => {
                let filter = in_chain_filter(&cfg.filter, attributes, member.dn);
                search_all_bases(cfg, conn, timeout, metrics, &filter)
                    .await?
                    .iter()
                    .filter_map(|e| group_name(cfg, e))
                    .collect()
            }
            Nesting::Off => {
                by_member(cfg, conn, timeout, metrics, attributes, member.dn, 1).await?
            }
            Nesting::Recursive { max_depth } => {
                by_member(
                    cfg, conn, timeout, metrics, attributes, member.dn, max_depth,
                )
                .await?
            }
        },
        Strategy::Posix => {
            let gid = first_value(member.entry, "gidNumber");
            let filter = posix_filter(&cfg.filter, member.username, gid.as_deref());
            search_all_bases(cfg, conn, timeout, metrics, &filter)
                .await?
                .iter()
                .filter_map(|e| group_name(cfg, e))
                .collect()
        }
        Strategy::MemberOf { attribute } => {
            let depth = match cfg.nesting {
                Nesting::Recursive { max_depth } => max_depth,
                Nesting::Off | Nesting::InChain => 1,
            };
            by_member_of(cfg, conn, timeout, metrics, attribute, member.entry, depth).await?
        }
    };
    Ok(sorted_unique(&mut names))
}

/// Sort by folded name (then as written), keep one of each folded name.
pub fn sorted_unique(names: &mut [String]) -> Vec<String> {
    let mut keyed: Vec<(String, &String)> = names.iter().map(|n| (fold(n), n)).collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, n)| n.clone()).collect()
}

/// The comparison key of a DN; a DN the server sent that does not parse is compared as is.
fn dn_key(text: &str) -> String {
    dn::normalize(text).unwrap_or_else(|_| text.to_lowercase())
}

fn group_name(cfg: &GroupConfig, entry: &SearchEntry) -> Option<String> {
    let name = first_value(entry, &cfg.name_attribute).or_else(|| {
        dn::parse(&entry.dn)
            .ok()
            .and_then(|d| d.leaf_value(&cfg.name_attribute).map(str::to_owned))
    });
    if name.is_none() {
        tracing::debug!(group = %entry.dn, attribute = %cfg.name_attribute, "group without a name; skipped");
    }
    name
}

/// Groups listing `user_dn` in one of `attributes`, and (up to `max_depth` levels) the groups
/// listing those.
async fn by_member(
    cfg: &GroupConfig,
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    attributes: &[String],
    user_dn: &str,
    max_depth: u32,
) -> Result<Vec<String>, DirectoryError> {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(dn_key(user_dn));
    let mut names = Vec::new();
    let mut targets = vec![user_dn.to_owned()];
    for level in 1..=max_depth {
        let mut next = Vec::new();
        for chunk in targets.chunks(TARGETS_PER_SEARCH) {
            let dns: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let filter = member_filter(&cfg.filter, attributes, &dns);
            for entry in search_all_bases(cfg, conn, timeout, metrics, &filter).await? {
                if seen.insert(dn_key(&entry.dn)) {
                    names.extend(group_name(cfg, &entry));
                    next.push(entry.dn);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        if level == max_depth && max_depth > 1 {
            tracing::debug!(
                max_depth,
                "nested groups go deeper than directory.groups.max_depth; the deeper ones are left out"
            );
        }
        targets = next;
    }
    Ok(names)
}

/// Groups named by the user's `attribute` (within the bases, when any), and with nesting
/// the groups named by those groups' `attribute`.
async fn by_member_of(
    cfg: &GroupConfig,
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    attribute: &str,
    entry: &SearchEntry,
    max_depth: u32,
) -> Result<Vec<String>, DirectoryError> {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(dn_key(&entry.dn));
    let mut names = Vec::new();
    let mut level_dns = values(entry, attribute);
    for level in 1..=max_depth {
        let mut next = Vec::new();
        for group_dn in level_dns {
            let Ok(parsed) = dn::parse(&group_dn) else {
                tracing::warn!(value = %group_dn, attribute, "a group DN the directory sent does not parse; skipped");
                continue;
            };
            if !cfg.bases.is_empty() && !cfg.bases.iter().any(|b| parsed.is_within(&b.parsed)) {
                continue;
            }
            if !seen.insert(parsed.normalized()) {
                continue;
            }
            let leaf = parsed.leaf_value(&cfg.name_attribute).map(str::to_owned);
            if level < max_depth || leaf.is_none() {
                // Read the group: its own memberships, and its name when the DN lacks it.
                match read_group(cfg, conn, timeout, metrics, &group_dn, attribute).await? {
                    Some(group) => {
                        names.extend(leaf.or_else(|| group_name(cfg, &group)));
                        next.extend(values(&group, attribute));
                    }
                    None => names.extend(leaf),
                }
            } else {
                names.extend(leaf);
            }
        }
        if next.is_empty() {
            break;
        }
        level_dns = next;
    }
    Ok(names)
}

fn values(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    super::values(entry, attribute).cloned().unwrap_or_default()
}

/// The group entry at `group_dn`, or None when it does not exist or is not a group.
async fn read_group(
    cfg: &GroupConfig,
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    group_dn: &str,
    attribute: &str,
) -> Result<Option<SearchEntry>, DirectoryError> {
    let attrs = vec![cfg.name_attribute.clone(), attribute.to_owned()];
    let found = paged_search(
        conn,
        timeout,
        metrics,
        group_dn,
        SearchScope::Base,
        &cfg.filter,
        attrs,
        cfg.page_size,
        true,
    )
    .await?;
    Ok(found.into_iter().next())
}

/// The groups matching `filter` under every configured base.
async fn search_all_bases(
    cfg: &GroupConfig,
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    filter: &str,
) -> Result<Vec<SearchEntry>, DirectoryError> {
    let mut all = Vec::new();
    for base in &cfg.bases {
        let attrs = vec![cfg.name_attribute.clone()];
        all.extend(
            paged_search(
                conn,
                timeout,
                metrics,
                &base.dn,
                cfg.scope,
                filter,
                attrs,
                cfg.page_size,
                false,
            )
            .await?,
        );
    }
    Ok(all)
}

/// One paged search, all of it. `missing_ok`: a base that does not exist is an empty answer
/// (reading one group) rather than a configuration problem (a search base).
#[allow(clippy::too_many_arguments)]
async fn paged_search(
    conn: &mut Ldap,
    timeout: Duration,
    metrics: &Metrics,
    base: &str,
    scope: SearchScope,
    filter: &str,
    attrs: Vec<String>,
    page_size: u32,
    missing_ok: bool,
) -> Result<Vec<SearchEntry>, DirectoryError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        DirectoryError::Unavailable(format!("group search under {base:?} failed: {e}"))
    };
    let started = std::time::Instant::now();
    let page = i32::try_from(page_size).unwrap_or(i32::MAX);
    let mut stream = conn
        .with_timeout(timeout)
        .streaming_search_with(
            PagedResults::new(page),
            base,
            ldap_scope(scope),
            filter,
            attrs,
        )
        .await
        .map_err(|e| unavailable(&e))?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await.map_err(|e| unavailable(&e))? {
        if entry.is_ref() || entry.is_intermediate() {
            continue;
        }
        entries.push(SearchEntry::construct(entry));
    }
    let result = stream.finish().await;
    metrics.ldap_operation(Operation::group_search, started.elapsed());
    match result.rc {
        0 => Ok(entries),
        32 if missing_ok => Ok(Vec::new()),
        // The login cannot be decided without every group: the directory is unavailable
        // for logins until an operator fixes it (503), which is no fault of the client's.
        32 => Err(DirectoryError::Unavailable(format!(
            "the group base {base:?} does not exist or the account searching for groups (the service account when one is configured) cannot see it; check directory.groups.base_dns and that account's read rights"
        ))),
        4 => Err(DirectoryError::Unavailable(format!(
            "the directory's size limit cut the group search under {base:?} short even with paging; raise the limit for the searching account (OpenLDAP: size.prtotal) or lower directory.groups.page_size"
        ))),
        rc => Err(DirectoryError::Unavailable(format!(
            "the directory answered a group search under {base:?} with result code {rc} ({})",
            result.text
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_kept_once_without_regard_to_case() {
        let mut names = vec![
            "staff".to_owned(),
            "Admins".to_owned(),
            "admins".to_owned(),
            "Größe".to_owned(),
            "backend".to_owned(),
        ];
        assert_eq!(
            sorted_unique(&mut names),
            vec!["Admins", "backend", "Größe", "staff"]
        );
    }
}
