//! A QR code drawn for a terminal with Unicode half blocks (two rows of
//! modules a line), light on dark with its quiet zone, as phone cameras
//! read it off a screen: how both programs show an authenticator link.

/// `text` as a QR code, one string of lines; an error when it is too long
/// for one.
pub fn for_terminal(text: &str) -> Result<String, String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("drawing the QR code: {e}"))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_becomes_a_square_of_half_blocks() {
        let qr = super::for_terminal("otpauth://totp/Mesh:ann%40example.org?secret=AB").unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10);
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Two rows of modules a line: about half as many lines as columns.
        assert!(lines.len() * 2 >= width && lines.len() * 2 <= width + 2);
        assert!(super::for_terminal(&"x".repeat(8000)).is_err());
    }
}
