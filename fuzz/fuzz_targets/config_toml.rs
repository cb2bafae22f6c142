//! `binpack.toml` as a cloned repository brings it: any text turned into arguments for one
//! command, or refused with a message, never a panic. The flag table is a fixed copy of the
//! shapes clap gives (a switch, a switch with an optional value, one value, a repeatable one).
#![no_main]

use binpack::support::config_toml::{parse, Flag, Takes};
use libfuzzer_sys::fuzz_target;

fn flag(name: &str, takes: Takes) -> Flag {
    Flag {
        name: name.to_string(),
        takes,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let common = || {
        vec![
            flag("quiet", Takes::Switch { value_too: false }),
            flag("load", Takes::Switch { value_too: true }),
            flag("tag", Takes::Many),
            flag("env", Takes::Many),
            flag("platform", Takes::One),
            flag("push", Takes::One),
        ]
    };
    let mut go = common();
    go.push(flag("ldflags", Takes::One));
    go.push(flag("build-flag", Takes::Many));
    let commands = [("bin", common()), ("go", go)];
    for command in ["bin", "go"] {
        if let Ok((args, _cmd)) = parse(text, command, &commands) {
            // Every argument is a long flag the command has.
            assert!(args.iter().all(|a| a.starts_with("--")));
        }
    }
});
