//! Settings from a TOML configuration file.
//!
//! A *setting* is a command-line option that also has an environment
//! variable. A program's configuration file may give any of its settings,
//! named by the option's long name (`chunk-grace = 3600`; `chunk_grace`
//! is read the same). What the file says becomes the option's default, so a
//! flag beats its environment variable, which beats the file, which beats
//! the built-in default.
//!
//! Every value is checked by the option's own parser, so the file accepts
//! exactly what the flag accepts; each problem is reported with its line.

use clap::{Arg, ArgMatches, Command, Parser};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The checked settings of one configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Values as the command line would spell them, by long option name.
    values: BTreeMap<String, String>,
}

impl Config {
    /// Reads `path` and checks it against the settings of `cmd`. The
    /// option `locator` (the one that says where the file is) cannot be set
    /// in it. Returns every problem found, not just the first.
    pub fn load(cmd: &Command, path: &Path, locator: &str) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            vec![ConfigError::Read {
                path: path.to_owned(),
                source,
            }]
        })?;
        Config::parse(cmd, &text, locator).map_err(|problems| {
            problems
                .into_iter()
                .map(|(line, message)| ConfigError::Invalid {
                    path: path.to_owned(),
                    line,
                    message,
                })
                .collect()
        })
    }

    /// Checks the text of a configuration file; problems come as
    /// `(line, message)`, in the order of the file.
    pub fn parse(cmd: &Command, text: &str, locator: &str) -> Result<Config, Vec<(usize, String)>> {
        let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let (table, errors) = DeTable::parse_recoverable(text);
        let mut problems: Vec<(usize, String)> = errors
            .iter()
            .map(|e| {
                (
                    line(e.span().map_or(0, |s| s.start)),
                    e.message().to_owned(),
                )
            })
            .collect();
        let known = settings(cmd);
        let mut values = BTreeMap::new();
        for (key, value) in table.get_ref() {
            let at = line(key.span().start);
            let name = key.get_ref().replace('_', "-");
            let Some(arg) = known.get(&name).filter(|_| name != locator) else {
                let message = if name == locator {
                    format!("`{name}` cannot be set here: it says where this file is")
                } else {
                    format!(
                        "unknown setting `{}`; the settings are: {}",
                        key.get_ref(),
                        known
                            .keys()
                            .filter(|k| *k != locator)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                problems.push((at, message));
                continue;
            };
            match scalar(value.get_ref()).and_then(|v| check(arg, &name, v)) {
                Ok(v) => {
                    values.insert(name, v);
                }
                Err(message) => problems.push((line(value.span().start), message)),
            }
        }
        problems.sort_by_key(|(line, _)| *line);
        if problems.is_empty() {
            Ok(Config { values })
        } else {
            Err(problems)
        }
    }

    /// The settings the file gives, by long option name, as the command
    /// line would spell their values.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// `cmd` with this file's values as the defaults of the options they
    /// name, in every subcommand that has them.
    pub fn apply(&self, cmd: Command) -> Command {
        cmd.mut_args(|arg| {
            let value = arg
                .get_long()
                .filter(|_| arg.get_env().is_some())
                .and_then(|long| self.values.get(long));
            match value {
                Some(v) => arg.default_value(v.clone()),
                None => arg,
            }
        })
        .mut_subcommands(|sub| self.apply(sub))
    }
}

/// Where a program's configuration file is.
#[derive(Debug, Clone)]
pub struct Location {
    pub path: PathBuf,
    /// Whether a missing file is an error (it was named explicitly) or
    /// just means "no settings" (the default place).
    pub required: bool,
}

/// Parses the command line of `P` with the settings of its configuration
/// file as defaults. A first parse tells `locate` where the file is (or
/// that this command reads none); the option `locator` names the file and
/// is refused inside it. A file with problems is reported on stderr, one
/// `FILE:LINE: problem` each, and the program exits with status 2, as it
/// does for a bad command line.
/// `command` is `P`'s clap command as the program shows it (its help
/// grouped, say).
pub fn parse<P: Parser>(
    command: fn() -> Command,
    locator: &str,
    locate: impl FnOnce(&P) -> Option<Location>,
) -> P {
    let first = P::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let Some(location) = locate(&first) else {
        return first;
    };
    if !location.required && !location.path.exists() {
        return first;
    }
    let cmd = command();
    match Config::load(&cmd, &location.path, locator) {
        Ok(config) => {
            let matches: ArgMatches = config.apply(cmd).get_matches();
            P::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
        Err(problems) => {
            for problem in problems {
                eprintln!("{}: {problem}", cmd.get_name());
            }
            std::process::exit(2)
        }
    }
}

/// Every setting of `cmd` and its subcommands, by long name.
pub fn settings(cmd: &Command) -> BTreeMap<String, Arg> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut found = BTreeMap::new();
    collect(&cmd, &mut found);
    found
}

fn collect(cmd: &Command, found: &mut BTreeMap<String, Arg>) {
    for arg in cmd.get_arguments() {
        if let (Some(long), Some(_)) = (arg.get_long(), arg.get_env()) {
            found.entry(long.to_owned()).or_insert_with(|| arg.clone());
        }
    }
    for sub in cmd.get_subcommands() {
        collect(sub, found);
    }
}

/// A TOML value as the command line would spell it.
fn scalar(value: &DeValue) -> Result<String, String> {
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|e| format!("{i} is not a usable integer: {e}")),
        DeValue::Float(f) => Ok(f.as_str().to_owned()),
        DeValue::Boolean(b) => Ok(b.to_string()),
        DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => {
            Err("a setting is a string, a number or true/false".to_owned())
        }
    }
}

/// Runs `value` through the parser of the option `arg`, as if it had been
/// given as `--name=value`.
fn check(arg: &Arg, name: &str, value: String) -> Result<String, String> {
    let probe = Arg::new(name.to_owned())
        .long(name.to_owned())
        .value_names(arg.get_value_names().unwrap_or_default().to_vec())
        .action(arg.get_action().clone())
        .value_parser(arg.get_value_parser().clone());
    let flag = !arg.get_action().takes_values();
    let argv = if flag {
        match value.as_str() {
            "true" => vec![format!("--{name}")],
            "false" => vec![],
            _ => return Err(format!("`{name}` is true or false")),
        }
    } else {
        vec![format!("--{name}={value}")]
    };
    Command::new(name.to_owned())
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from(argv)
        .map(|_| value)
        .map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::Config;
    use clap::{Arg, ArgAction, Command, value_parser};

    fn program() -> Command {
        Command::new("demo")
            .arg(
                Arg::new("config")
                    .long("config")
                    .env("DEMO_CONFIG")
                    .global(true),
            )
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("listen")
                            .long("listen")
                            .env("DEMO_LISTEN")
                            .value_parser(value_parser!(std::net::SocketAddr))
                            .default_value("127.0.0.1:1"),
                    )
                    .arg(
                        Arg::new("chunk_grace")
                            .long("chunk-grace")
                            .env("DEMO_CHUNK_GRACE")
                            .value_parser(value_parser!(u64))
                            .default_value("5"),
                    )
                    .arg(
                        Arg::new("quiet")
                            .long("quiet")
                            .env("DEMO_QUIET")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(Arg::new("once").long("once").action(ArgAction::SetTrue)),
            )
    }

    #[test]
    fn a_good_file_becomes_the_defaults() {
        let text = "# comment\nlisten = \"0.0.0.0:7070\"\nchunk_grace = 0x10\nquiet = true\n";
        let config = Config::parse(&program(), text, "config").unwrap();
        assert_eq!(config.values()["chunk-grace"], "16");
        let matches = config.apply(program()).get_matches_from(["demo", "serve"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(
            serve
                .get_one::<std::net::SocketAddr>("listen")
                .unwrap()
                .to_string(),
            "0.0.0.0:7070"
        );
        assert_eq!(serve.get_one::<u64>("chunk_grace"), Some(&16));
        assert!(serve.get_flag("quiet"));
        // A flag still beats the file.
        let matches =
            config
                .apply(program())
                .get_matches_from(["demo", "serve", "--chunk-grace", "3"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<u64>("chunk_grace"), Some(&3));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "listen = \"nowhere\"\n\nchunk-grace = -1\nonce = true\ncolour = \"red\"\nconfig = \"x\"\n[serve]\n";
        let problems = Config::parse(&program(), text, "config").unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3, 4, 5, 6, 7], "{problems:?}");
        assert!(problems[0].1.contains("--listen"), "{problems:?}");
        assert!(
            problems[2].1.contains("unknown setting `once`"),
            "{problems:?}"
        );
        assert!(problems[4].1.contains("cannot be set here"), "{problems:?}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let problems = Config::parse(
            &program(),
            "listen = \"127.0.0.1:1\"\nchunk-grace = = 3\n",
            "config",
        )
        .unwrap_err();
        assert_eq!(problems[0].0, 2, "{problems:?}");
    }
}
