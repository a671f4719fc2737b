//! The `lava-power` binary: all of it lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    lava_power::cli::main()
}
