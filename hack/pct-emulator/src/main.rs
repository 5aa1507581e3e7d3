fn main() {
    eprintln!("pct-emulator: under construction");
    std::process::exit(1);
}
