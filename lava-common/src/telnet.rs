//! The telnet (RFC 854/855/856/857/858) and RFC 2217 codec: a pure state machine over bytes.
