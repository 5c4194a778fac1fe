//! `--max-profile-mib` and what it becomes: the bound on decoding every command that reads
//! profiles takes, and the run's one memory budget for inflated bytes.

use clap::Args;

use crate::profile::{DecodeOptions, Footprint, MemoryBudget};

/// `--max-profile-mib`, flattened into every command that reads profiles.
#[derive(Debug, Clone, Copy, Args)]
pub(super) struct DecodeLimitArgs {
    /// Largest decompressed profile accepted, in MiB (protects against gzip bombs); all
    /// profiles being decoded at once hold at most twice this, whatever the pod count.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub(super) max_profile_mib: u64,
}

impl DecodeLimitArgs {
    /// The decode options of a run: the limit per profile, and the run's one memory budget.
    pub(super) fn limits(self, footprint: Footprint) -> DecodeOptions {
        let max_decompressed_bytes = self.max_profile_mib.saturating_mul(1 << 20);
        DecodeOptions {
            max_decompressed_bytes,
            footprint,
            budget: Some(memory_budget(max_decompressed_bytes)),
        }
    }
}

/// The run's one bound on inflated profile bytes at once: two profiles at their limit, so two
/// cores stay busy, and however many pods answer with bombs, no more than that is inflated.
fn memory_budget(max_decompressed_bytes: u64) -> &'static MemoryBudget {
    static BUDGET: std::sync::OnceLock<MemoryBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(|| {
        MemoryBudget::new(max_decompressed_bytes.saturating_mul(2).saturating_add(2))
    })
}
