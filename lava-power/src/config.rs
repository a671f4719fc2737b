//! One PDU's config file, `/etc/lava-power/NAME.toml`: the keys every driver shares (delays, retries,
//! timeouts, outlet names) and the dispatch to the driver that reads its own keys, all validated at
//! load with errors naming file, line and key.

use std::collections::BTreeMap;
use std::time::Duration;

use lava_common::config::ConfigDuration;
use toml::Spanned;

/// The keys every driver's config has, as written (see `pdu_keys!`).
#[derive(Debug, Clone)]
pub struct Common {
    /// off → delay → on.
    pub reboot_delay: Duration,
    /// Extra attempts after the first failed one.
    pub retries: u32,
    pub retry_delay: Duration,
    /// One attempt's limit.
    pub timeout: Duration,
    /// The whole request's limit (attempts, retries and a reboot's delay included).
    pub deadline: Duration,
    /// Outlet numbers/names this PDU has, when known (`outlet_count` or the driver's own).
    pub outlet_count: Option<u32>,
    /// Optional names of outlets: outlet → name.
    pub outlets: BTreeMap<String, String>,
}

/// Declares a driver's raw config struct: the common keys plus the driver's own, with unknown keys
/// rejected (so a typo names its line). Use `raw.common(src)` to validate the common part.
#[macro_export]
macro_rules! pdu_keys {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            pub driver: String,
            pub reboot_delay: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub retries: Option<toml::Spanned<i64>>,
            pub retry_delay: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub timeout: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub deadline: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub outlet_count: Option<toml::Spanned<i64>>,
            pub outlets: Option<toml::Spanned<std::collections::BTreeMap<String, String>>>,
            $($(#[$fmeta])* $fvis $field: $ty),*
        }

        impl $name {
            /// Validates the keys every driver shares.
            pub fn common(
                &self,
                src: &lava_common::Source,
            ) -> Result<$crate::config::Common, lava_common::ConfigError> {
                $crate::config::common(
                    src,
                    $crate::config::CommonRaw {
                        reboot_delay: self.reboot_delay.as_ref(),
                        retries: self.retries.as_ref(),
                        retry_delay: self.retry_delay.as_ref(),
                        timeout: self.timeout.as_ref(),
                        deadline: self.deadline.as_ref(),
                        outlet_count: self.outlet_count.as_ref(),
                        outlets: self.outlets.as_ref(),
                    },
                )
            }
        }
    };
}

/// Borrowed common keys, as `pdu_keys!` structs hold them.
pub struct CommonRaw<'a> {
    pub reboot_delay: Option<&'a Spanned<ConfigDuration>>,
    pub retries: Option<&'a Spanned<i64>>,
    pub retry_delay: Option<&'a Spanned<ConfigDuration>>,
    pub timeout: Option<&'a Spanned<ConfigDuration>>,
    pub deadline: Option<&'a Spanned<ConfigDuration>>,
    pub outlet_count: Option<&'a Spanned<i64>>,
    pub outlets: Option<&'a Spanned<BTreeMap<String, String>>>,
}

/// Default off → on delay of a reboot.
pub const DEFAULT_REBOOT_DELAY: Duration = Duration::from_secs(5);
/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request deadline: answers before LAVA's 30 s pdu-reboot timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(25);

/// A loaded PDU: the shared keys and the driver built from its own keys.
pub struct Loaded {
    pub common: Common,
    pub driver: std::sync::Arc<dyn crate::driver::PowerDriver>,
}
