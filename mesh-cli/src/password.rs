//! Reading a password: from the first line of standard input when asked to
//! (or when it is not a terminal), otherwise from the terminal with echo
//! turned off — a new one twice, so that a typing mistake is caught —;
//! and a one-time code the same ways, after the password.

use std::io::{BufRead, IsTerminal, Write};

/// The password, without its line ending.
pub fn read(from_stdin: bool) -> std::io::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        return read_stdin();
    }
    prompt("Password: ")
}

/// A new password: from standard input as [`read`], or typed twice on
/// the terminal, which must agree.
pub fn read_new(from_stdin: bool) -> std::io::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        return read_stdin();
    }
    let first = prompt("New password: ")?;
    let again = prompt("The new password again: ")?;
    if first != again {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the two passwords differ",
        ));
    }
    Ok(first)
}

/// A one-time code (a second factor): the next line of standard input
/// with `from_stdin`, else typed on the terminal after `prompt_text`;
/// `None` when neither is possible (standard input is not a terminal).
pub fn read_code(prompt_text: &str, from_stdin: bool) -> std::io::Result<Option<String>> {
    if from_stdin {
        return read_stdin().map(Some);
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    prompt(prompt_text).map(Some)
}

fn read_stdin() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn prompt(text: &str) -> std::io::Result<String> {
    eprint!("{text}");
    std::io::stderr().flush()?;
    let line = read_hidden_line()?;
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a line from the terminal without echoing it.
fn read_hidden_line() -> std::io::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the terminal on standard input; term is valid memory.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error());
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
