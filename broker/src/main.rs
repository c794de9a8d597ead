//! `wharf-broker`: runs the Kafka-compatible broker (see
//! [`wharf_broker::app`] for what it starts).

fn main() -> std::process::ExitCode {
    wharf_broker::app::main(std::env::args_os())
}
