fn main() {
    std::process::exit(runtime_spec_tests::cli::main());
}
