fn main() {
    std::process::exit(ipcscope::cli::main());
}
