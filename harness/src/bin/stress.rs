fn main() {
    std::process::exit(harness::app::main(std::env::args_os()));
}
