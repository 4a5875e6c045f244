//! Reading a password: from the first line of standard input when asked to
//! (or when it is not a terminal), otherwise from the terminal with echo
//! turned off.

use std::io::{BufRead, IsTerminal, Write};

/// The password, without its line ending.
pub fn read(from_stdin: bool) -> anyhow::Result<String> {
    let mut line = String::new();
    if from_stdin || !std::io::stdin().is_terminal() {
        std::io::stdin().lock().read_line(&mut line)?;
    } else {
        eprint!("Password: ");
        std::io::stderr().flush()?;
        line = read_hidden_line()?;
        eprintln!();
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a line from the terminal without echoing it.
fn read_hidden_line() -> anyhow::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the terminal on standard input; term is valid memory.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        anyhow::bail!("cannot read the terminal's settings");
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // SAFETY: as above, with settings derived from the current ones.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let mut line = String::new();
    let result = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result?;
    Ok(line)
}
