//! The `lava-console` binary: everything is in the library, so tests and man pages share it.

fn main() -> std::process::ExitCode {
    lava_console::main()
}
