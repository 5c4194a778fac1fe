//! Endpoints as the user names them: target arguments (`NAME=URL`, Kubernetes objects),
//! pprof base URLs (credentials refused and never printed), and the pods' names, each one
//! safe folder.

use std::collections::HashSet;
use std::path::PathBuf;

use reqwest::Url;

use super::PlanError;

/// Longest accepted pod or side name.
pub const MAX_NAME_LEN: usize = 100;

/// One pod to capture: a name (a directory name in the archive) and its pprof base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// Safe as a single path component (see [`check_name`]).
    pub name: String,
    /// The pprof base URL, ending in `/` (e.g. `http://127.0.0.1:6060/debug/pprof/`).
    pub base_url: Url,
}

impl PodTarget {
    /// The URL of one endpoint, e.g. `profile?seconds=10`.
    pub fn url(&self, path: &str) -> Url {
        // A base ending in `/` joined with a relative path cannot fail; fall back to the base.
        self.base_url
            .join(path)
            .unwrap_or_else(|_| self.base_url.clone())
    }
}

/// One side of a live capture: its name (`baseline`, `candidate`) and its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTargets {
    /// The side's name, used as a directory name.
    pub side: String,
    /// The targets as the user gave them.
    pub targets: Vec<String>,
    /// The pods.
    pub pods: Vec<PodTarget>,
}

/// What a command-line target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A pprof endpoint reached over HTTP, with the pod name the user chose (`NAME=URL`).
    Http {
        /// The pod name given with `NAME=URL`.
        name: Option<String>,
        /// The pprof base URL.
        url: Url,
    },
    /// A Kubernetes object (`[NS/]KIND/NAME`); not reachable by this version.
    Kubernetes(String),
    /// Anything else: a local file or directory of saved profiles.
    Path(PathBuf),
}

const KUBE_KINDS: [&str; 8] = [
    "svc",
    "service",
    "deploy",
    "deployment",
    "sts",
    "statefulset",
    "pod",
    "po",
];

/// Classifies a target argument; URLs are validated and normalised to their pprof base.
///
/// `http(s)://HOST:PORT[/PREFIX]` or `NAME=http(s)://...` is a live pod; `[NS/]KIND/NAME` with
/// a Kubernetes kind is a Kubernetes target; anything else is a path (the caller checks that
/// it exists, and prefers an existing path over a Kubernetes reading).
pub fn parse_target(arg: &str) -> Result<TargetSpec, PlanError> {
    let (name, url_text) = match arg.split_once('=') {
        Some((name, rest)) if rest.contains("://") && !name.contains(['/', ':']) => {
            check_name(name).map_err(|why| {
                PlanError::Invalid(format!("{arg}: bad pod name {name:?}: {why}"))
            })?;
            (Some(name.to_owned()), rest)
        }
        _ => (None, arg),
    };
    if url_text.contains("://") {
        return Ok(TargetSpec::Http {
            name,
            url: pprof_base(url_text)?,
        });
    }
    let parts: Vec<&str> = arg.split('/').collect();
    let looks_kube = matches!(parts.len(), 2 | 3)
        && KUBE_KINDS.contains(&parts[parts.len() - 2])
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
    if looks_kube {
        return Ok(TargetSpec::Kubernetes(arg.to_owned()));
    }
    Ok(TargetSpec::Path(PathBuf::from(arg)))
}

/// Validates a URL and returns its pprof base: `/debug/pprof/` is appended unless the path
/// already ends with it (so `http://h:6060`, `http://h:6060/debug/pprof` and
/// `http://h:6060/admin/debug/pprof/` all work).
pub fn pprof_base(text: &str) -> Result<Url, PlanError> {
    let bad = |why: String| {
        PlanError::Invalid(format!(
            "{}: not a usable pprof URL ({why})",
            without_credentials(text)
        ))
    };
    let mut url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?}; use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "it has a query or fragment; give the base URL, e.g. http://HOST:PORT".to_owned(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in URLs are not supported; they would be written to the manifest"
                .to_owned(),
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/debug/pprof") {
        format!("{path}/")
    } else {
        format!("{path}/debug/pprof/")
    };
    url.set_path(&path);
    Ok(url)
}

/// `text` with the user information of every URL in it (`user:password@`) replaced by `***@`,
/// so that an error quoting a refused URL never prints its password. Works on any text, parsed
/// as a URL or not: it looks for `://` and the authority after it.
pub fn without_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into()
}

/// Checks that a user-given name is safe as one path component: 1 to 100 characters among
/// letters, digits, `.`, `_` and `-`, not starting with `.` (so never `.`, `..`, `/` or NUL).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    if name.starts_with('.') {
        return Err("it starts with '.'".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "it contains {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// `first` when no earlier name took it, else the first free of `{stem}-2{ending}`,
/// `{stem}-3{ending}`, ...; recorded in `taken`. Names that meet (once made safe, or derived
/// alike) get numbers rather than one overwriting the other's files.
pub(crate) fn first_free(
    first: String,
    stem: &str,
    ending: &str,
    taken: &mut HashSet<String>,
) -> String {
    let mut name = first;
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{stem}-{n}{ending}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A safe path component derived from any text: unsafe characters become `_`, a leading `.`
/// gets a `_` before it, and the result is cut to [`MAX_NAME_LEN`] characters.
pub fn safe_name(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
        s.truncate(MAX_NAME_LEN);
    }
    s
}

/// The pod name derived from a URL: `HOST-PORT`, e.g. `127.0.0.1-6060` (IPv6 colons become
/// `_`).
pub fn pod_name(url: &Url) -> String {
    let host = url
        .host_str()
        .unwrap_or("pod")
        .trim_start_matches('[')
        .trim_end_matches(']');
    match url.port_or_known_default() {
        Some(port) => safe_name(&format!("{host}-{port}")),
        None => safe_name(host),
    }
}

/// Builds one side's pods from its URL targets: names from `NAME=` or derived from the URL,
/// derived duplicates numbered (`-2`, `-3`), given duplicates and repeated URLs refused.
pub fn side_targets(
    side: &str,
    targets: &[(String, Option<String>, Url)],
) -> Result<SideTargets, PlanError> {
    check_name(side).map_err(|why| PlanError::Invalid(format!("bad side name {side:?}: {why}")))?;
    let mut used: HashSet<String> = targets.iter().filter_map(|t| t.1.clone()).collect();
    let mut given = HashSet::new();
    let mut pods = Vec::with_capacity(targets.len());
    for (arg, name, url) in targets {
        let name = match name {
            Some(n) => {
                if !given.insert(n.clone()) {
                    return Err(PlanError::Invalid(format!(
                        "{side}: the pod name {n:?} is given twice"
                    )));
                }
                n.clone()
            }
            None => {
                let base = pod_name(url);
                first_free(base.clone(), &base, "", &mut used)
            }
        };
        used.insert(name.clone());
        if pods.iter().any(|p: &PodTarget| p.base_url == *url) {
            return Err(PlanError::Invalid(format!(
                "{side}: {arg} is listed twice; each pod is one process"
            )));
        }
        pods.push(PodTarget {
            name,
            base_url: url.clone(),
        });
    }
    Ok(SideTargets {
        side: side.to_owned(),
        targets: targets.iter().map(|t| t.0.clone()).collect(),
        pods,
    })
}

/// Refuses the same endpoint on two sides: one process serves one CPU profile at a time, and a
/// process compared with itself says nothing.
pub fn check_disjoint(sides: &[&SideTargets]) -> Result<(), PlanError> {
    for (i, a) in sides.iter().enumerate() {
        for b in &sides[i + 1..] {
            for pa in &a.pods {
                if let Some(pb) = b.pods.iter().find(|pb| pb.base_url == pa.base_url) {
                    return Err(PlanError::Invalid(format!(
                        "{} is both a {} pod ({}) and a {} pod ({}); each side must be its own processes",
                        pa.base_url, a.side, pa.name, b.side, pb.name
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn credentials_in_urls_never_reach_a_message() {
        use super::without_credentials as w;
        assert_eq!(w("http://user:pw@host:6060/x"), "http://***@host:6060/x");
        assert_eq!(
            w("a http://u@h b https://u:p:q@h2?x"),
            "a http://***@h b https://***@h2?x"
        );
        assert_eq!(w("http://host:6060/a@b"), "http://host:6060/a@b");
        assert_eq!(w("no url here @ all"), "no url here @ all");
        assert_eq!(w("http://u:p@"), "http://***@");
        let refused = super::pprof_base("http://admin:s3cret@10.0.0.5:6060").unwrap_err();
        assert!(!refused.to_string().contains("s3cret"), "{refused}");
        assert!(
            refused.to_string().contains("http://***@10.0.0.5:6060"),
            "{refused}"
        );
    }

    #[test]
    fn urls_become_pprof_bases() {
        let base = |s| pprof_base(s).unwrap().to_string();
        assert_eq!(
            base("http://127.0.0.1:6060"),
            "http://127.0.0.1:6060/debug/pprof/"
        );
        assert_eq!(
            base("http://127.0.0.1:6060/debug/pprof"),
            "http://127.0.0.1:6060/debug/pprof/"
        );
        assert_eq!(
            base("https://h/admin/debug/pprof/"),
            "https://h/admin/debug/pprof/"
        );
        assert_eq!(base("http://h:1/admin"), "http://h:1/admin/debug/pprof/");
        for bad in [
            "ftp://h:1",
            "http://",
            "http://h:1/?seconds=3",
            "http://u:p@h:1",
            "http://h:99999",
        ] {
            assert!(pprof_base(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn targets_are_classified() {
        assert!(matches!(
            parse_target("http://127.0.0.1:1").unwrap(),
            TargetSpec::Http { name: None, .. }
        ));
        assert_eq!(
            parse_target("web-1=http://127.0.0.1:1").unwrap(),
            TargetSpec::Http {
                name: Some("web-1".into()),
                url: pprof_base("http://127.0.0.1:1").unwrap()
            }
        );
        assert!(parse_target("../x=http://127.0.0.1:1").is_err());
        assert!(parse_target("a b=http://127.0.0.1:1").is_err());
        assert_eq!(
            parse_target("prod/deploy/api").unwrap(),
            TargetSpec::Kubernetes("prod/deploy/api".into())
        );
        assert_eq!(
            parse_target("svc/api").unwrap(),
            TargetSpec::Kubernetes("svc/api".into())
        );
        assert_eq!(
            parse_target("out/profiles/baseline").unwrap(),
            TargetSpec::Path("out/profiles/baseline".into())
        );
    }

    #[test]
    fn names_never_escape_their_directory() {
        for hostile in ["..", ".", "a/../b", "x\0y", "/etc", "", ".hidden"] {
            let s = safe_name(hostile);
            assert!(check_name(&s).is_ok(), "{hostile:?} -> {s:?}");
            assert!(!s.contains('/') && !s.contains('\0') && s != ".." && s != ".");
        }
        assert_eq!(safe_name(&"x".repeat(300)).len(), MAX_NAME_LEN);
        let url = |s| pprof_base(s).unwrap();
        assert_eq!(pod_name(&url("http://127.0.0.1:6060")), "127.0.0.1-6060");
        assert_eq!(pod_name(&url("http://[::1]:6060")), "__1-6060");
        assert_eq!(pod_name(&url("https://example.com")), "example.com-443");
    }

    #[test]
    fn targets_whose_names_meet_once_made_safe_get_folders_of_their_own() {
        // `[::1]` and `__1` both make `__1-6060`; a given name takes the next number first.
        let t = |s: &str| (s.to_owned(), None, pprof_base(s).unwrap());
        let side = side_targets(
            "baseline",
            &[
                t("http://[::1]:6060"),
                t("http://__1:6060"),
                (
                    "__1-6060-2=http://h:1".to_owned(),
                    Some("__1-6060-2".to_owned()),
                    pprof_base("http://h:1").unwrap(),
                ),
                t("http://[::1]:6060/admin"),
            ],
        )
        .unwrap();
        let names: Vec<&str> = side.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["__1-6060", "__1-6060-3", "__1-6060-2", "__1-6060-4"]
        );
        for n in names {
            assert!(check_name(n).is_ok(), "{n:?}");
        }
    }

    #[test]
    fn derived_names_are_unique_and_urls_distinct() {
        let t = |s: &str| (s.to_owned(), None, pprof_base(s).unwrap());
        let side = side_targets(
            "baseline",
            &[t("http://h:1"), t("http://h:1/admin"), t("http://h:2")],
        )
        .unwrap();
        let names: Vec<&str> = side.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["h-1", "h-1-2", "h-2"]);
        assert!(side_targets("baseline", &[t("http://h:1"), t("http://h:1/")]).is_err());
        assert!(side_targets("../x", &[t("http://h:1")]).is_err());
        let other = side_targets("candidate", &[t("http://h:2")]).unwrap();
        assert!(check_disjoint(&[&side, &other]).is_err());
        assert_eq!(
            side.pods[0].url("profile?seconds=2").as_str(),
            "http://h:1/debug/pprof/profile?seconds=2"
        );
    }
}
