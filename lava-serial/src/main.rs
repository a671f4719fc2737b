//! The `lava-serial` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    lava_serial::cli::main()
}
