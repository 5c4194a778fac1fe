//! Errors across the pipeline: walking a chain of causes (one place for what five modules
//! each did by hand), and the class each error type gives itself, from which the command line
//! takes its exit code.

use std::error::Error;

/// Whether the person running the gate can fix a failure by changing what they gave it.
///
/// The command line maps it to an exit code (2 for bad input, 3 otherwise); CI systems rely
/// on the difference: a bad policy is the author's to fix, an unreachable cluster is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// A file, field, flag or target given to the gate is wrong; the message names it.
    BadInput,
    /// Something outside the input failed: a cluster, a pod, a store, the network, a disk.
    Infrastructure,
}

/// An error type that says, variant by variant, which [`FailureClass`] it is.
///
/// Implemented by every error type a command can return (the profile's, the summary's and
/// the wire's reach the top only wrapped in one of them); enums match every variant without
/// a wildcard, so a new variant cannot be added without deciding its class.
pub trait Classified: Error {
    /// This error's class, not looking at its causes.
    fn class(&self) -> FailureClass;
}

/// The class of an error chain: bad input when any error in it says so, since a wrapper (a
/// capture failing because its target was malformed) is only as fixable as its cause.
pub fn chain_class(classes: impl IntoIterator<Item = Option<FailureClass>>) -> FailureClass {
    if classes
        .into_iter()
        .any(|c| c == Some(FailureClass::BadInput))
    {
        FailureClass::BadInput
    } else {
        FailureClass::Infrastructure
    }
}

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
