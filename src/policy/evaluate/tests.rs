//! Unit tests of the verdict's helpers.

use super::{deepest, is_own_code, ratio_words, Carrier};

fn carrier(index: usize, name: &str, level: f64, depth: f64) -> Carrier<'_> {
    Carrier {
        index,
        name,
        level,
        own: 0.0,
        depth,
    }
}

#[test]
fn the_deepest_carrier_of_a_chain_is_named_and_a_shared_callee_beats_one_caller() {
    // main.main -> main.handle -> main.hashRecord; the callers carry the rise and more
    // (other work under them moved too).
    let chain = [
        carrier(0, "main.main", 100.0, 5.0),
        carrier(1, "main.handle", 40.0, 3.0),
        carrier(2, "main.hashRecord", 12.0, 1.0),
    ];
    assert_eq!(deepest(&chain), Some(2));
    // A lock's user called from two places carries more than either caller.
    let diamond = [
        carrier(0, "main.counterFlusher", 7.0, 2.0),
        carrier(1, "main.cycle", 3.0, 2.0),
        carrier(2, "main.updateCounters", 10.0, 1.0),
    ];
    assert_eq!(deepest(&diamond), Some(2));
    assert_eq!(deepest(&[]), None);
}

#[test]
fn own_code_and_ratio_words() {
    assert!(is_own_code("main.f"));
    assert!(is_own_code("github.com/acme/shop.(*Cart).Total"));
    assert!(!is_own_code("crypto/sha256.block"));
    assert!(!is_own_code("runtime.mallocgc"));
    assert_eq!(ratio_words(1.52), "+52%");
    assert_eq!(ratio_words(0.7), "-30%");
    assert_eq!(ratio_words(12.4), "12x");
    assert_eq!(ratio_words(f64::INFINITY), "new");
}
