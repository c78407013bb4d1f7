//! The font every picture here is drawn with (the training plots, attention maps): DejaVu Sans,
//! embedded in the binary and registered with plotters once, so no system font is needed.

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name to draw with; registers DejaVu Sans under it on first use.
pub fn sans() -> &'static str {
    const FAMILY: &str = "sans-serif";
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // DejaVu Sans is a valid font: registering it cannot fail.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular());
    });
    FAMILY
}
