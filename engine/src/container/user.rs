//! Resolves docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the image's
//! /etc/passwd and /etc/group, as docker does: numeric ids need no entry, names must exist,
//! and supplementary groups are those listing the user by name.

use std::path::Path;

use super::ContainerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (used for HOME), `/` when unknown.
    pub home: String,
}

/// Reads `etc/passwd` and `etc/group` relative to `rootfs` (missing files are empty).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, ContainerError> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve_from(&passwd, &group, spec)
}

pub fn resolve_from(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser, ContainerError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => pw.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => pw.iter().find(|f| f[0] == user_part),
    };
    let uid = match (user_part.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(f)) => f[2].parse().unwrap_or(0),
        (Err(_), None) => {
            return Err(ContainerError::UnknownUser {
                user: user_part.into(),
            });
        }
    };
    let mut gid = entry.and_then(|f| f[3].parse().ok()).unwrap_or(0);
    let home = entry
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into());
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| ContainerError::UnknownGroup { group: g.into() })?,
        };
    }
    let name = entry.map(|f| f[0]).unwrap_or("");
    let mut additional_gids: Vec<u32> = if group_part.is_none() && !name.is_empty() {
        gr.iter()
            .filter(|f| f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect()
    } else {
        vec![]
    };
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// `--group-add` entries (names or gids) as gids, names looked up in the image's /etc/group.
pub fn resolve_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, ContainerError> {
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    groups_from(&group, groups)
}

pub fn groups_from(group: &str, groups: &[String]) -> Result<Vec<u32>, ContainerError> {
    groups
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| ContainerError::UnknownGroup { group: g.clone() }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n";
    const GR: &str = "root:x:0:\nwww:x:33:\nwheel:x:10:www,root\nnogroup:x:65534:\n";

    #[test]
    fn names_ids_and_groups() {
        let u = resolve_from(PW, GR, "www").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (33, 33, vec![10])
        );
        assert_eq!(u.home, "/var/www");
        let u = resolve_from(PW, GR, "1234:5678").unwrap();
        assert_eq!((u.uid, u.gid), (1234, 5678));
        let u = resolve_from(PW, GR, "nobody:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 10));
        assert!(resolve_from(PW, GR, "ghost").is_err());
        assert!(resolve_from(PW, GR, "root:ghosts").is_err());
        assert_eq!(resolve_from(PW, GR, "").unwrap().uid, 0);
        let add = ["wheel".to_string(), "4242".to_string()];
        assert_eq!(groups_from(GR, &add).unwrap(), vec![10, 4242]);
        assert!(groups_from(GR, &["ghosts".to_string()]).is_err());
    }
}
