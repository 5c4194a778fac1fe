//! Walking an error's causes: one place for what five modules each did by hand.

use std::error::Error;

/// An error and its causes, outermost first.
pub fn causes<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |&e| e.source())
}

/// The error and its causes joined by `: `, outermost first; a cause whose text the message
/// already holds (errors that print their source, as `"{path}: {source}"` does) is not
/// repeated. Libraries' top-level messages alone often say only "client error (Connect)".
pub fn chain_message(e: &(dyn Error + 'static)) -> String {
    let mut message = String::new();
    for cause in causes(e) {
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// The innermost non-empty message of the chain (`Connection refused (os error 111)`).
pub fn root_cause(e: &(dyn Error + 'static)) -> String {
    causes(e)
        .map(|c| c.to_string())
        .filter(|t| !t.is_empty())
        .last()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: String,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(texts: &[&str]) -> E {
        texts
            .iter()
            .rev()
            .fold(None, |source: Option<Box<E>>, t| {
                Some(Box::new(E {
                    text: (*t).to_owned(),
                    source: source.map(|s| *s).map(Box::new),
                }))
            })
            .map(|b| *b)
            .unwrap()
    }

    #[test]
    fn causes_are_joined_once_each_outermost_first() {
        let err = e(&[
            "reading a.pb.gz: disk on fire",
            "disk on fire",
            "",
            "os error 5",
        ]);
        assert_eq!(causes(&err).count(), 4);
        assert_eq!(
            chain_message(&err),
            "reading a.pb.gz: disk on fire: os error 5"
        );
        assert_eq!(root_cause(&err), "os error 5");
        assert_eq!(root_cause(&e(&["only"])), "only");
    }
}
