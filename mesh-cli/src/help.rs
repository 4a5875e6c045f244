//! Help texts beyond what clap derives: a program's subcommands listed in
//! groups by what they are for, and a check that every argument says what
//! it is (run by each program's tests).

use clap::Command;

/// A heading and the subcommands under it, in the order shown.
pub type Group = (&'static str, &'static [&'static str]);

/// `cmd` with its `--help` listing the subcommands under `groups`'
/// headings instead of one "Commands:" list. Every subcommand must be in
/// a group ([`ungrouped`] finds those that are not).
pub fn grouped(cmd: Command, groups: &[Group]) -> Command {
    let width = groups
        .iter()
        .flat_map(|(_, names)| names.iter().map(|n| n.len()))
        .max()
        .unwrap_or(0);
    let mut listing = String::new();
    for (heading, names) in groups {
        listing += &format!("{heading}:\n");
        for name in *names {
            let about = cmd
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            listing += &format!("  {name:width$}  {about}\n");
        }
        listing += "\n";
    }
    // Braces in the texts would read as the template's tags.
    let listing = listing.replace('{', "(").replace('}', ")");
    cmd.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{listing}\
         Options:\n{{options}}{{after-help}}"
    ))
}

/// The subcommands of `cmd` in no group, and the names in a group that are
/// no subcommand.
pub fn ungrouped(cmd: &Command, groups: &[Group]) -> Vec<String> {
    let named: Vec<&str> = groups.iter().flat_map(|(_, n)| n.iter().copied()).collect();
    let mut wrong: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| !named.contains(n))
        .map(|n| format!("{n} is in no group"))
        .collect();
    for name in named {
        if cmd.find_subcommand(name).is_none() {
            wrong.push(format!("{name} is no subcommand"));
        }
    }
    wrong
}

/// Every argument, at any depth of subcommands, that has no help text:
/// `"meshfs unmount <MOUNTPOINT>"`.
pub fn undocumented(cmd: &Command) -> Vec<String> {
    let mut found = Vec::new();
    walk(cmd, cmd.get_name(), &mut found);
    found
}

fn walk(cmd: &Command, path: &str, found: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let builtin = matches!(arg.get_id().as_str(), "help" | "version");
        if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
            let shown = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            found.push(format!("{path} {shown}"));
        }
    }
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;

    fn demo() -> Command {
        Command::new("demo")
            .about("A demo")
            .arg(Arg::new("verbose").long("verbose").help("Say more"))
            .subcommand(
                Command::new("serve")
                    .about("Serve {it}")
                    .arg(Arg::new("dir").help("Where")),
            )
            .subcommand(Command::new("stop").about("Stop").arg(Arg::new("pid")))
    }

    #[test]
    fn subcommands_are_listed_under_their_groups() {
        let groups: &[Group] = &[("Running", &["serve"]), ("Stopping", &["stop"])];
        let help = grouped(demo(), groups).render_help().to_string();
        let running = help.find("Running:\n  serve  Serve (it)\n").expect(&help);
        let stopping = help.find("Stopping:\n  stop   Stop\n").expect(&help);
        assert!(running < stopping, "{help}");
        assert!(help.contains("--verbose"), "{help}");
        assert!(!help.contains("Commands:"), "{help}");
        assert!(ungrouped(&demo(), groups).is_empty());
        assert_eq!(
            ungrouped(&demo(), &[("Running", &["serve", "start"])]),
            ["stop is in no group", "start is no subcommand"]
        );
    }

    #[test]
    fn arguments_without_help_are_found() {
        assert_eq!(undocumented(&demo()), ["demo stop <PID>"]);
    }
}
