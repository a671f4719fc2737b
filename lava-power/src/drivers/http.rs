//! The `http` PDU driver.

/// Reads this driver's keys from a PDU config file.
pub fn load(src: &lava_common::Source) -> Result<crate::config::Loaded, lava_common::ConfigError> {
    Err(src.invalid(
        None,
        "driver",
        "the http driver is not available yet",
        None,
    ))
}
