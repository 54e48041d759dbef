//! The colours of the pages and the email, derived from
//! `branding.accent_color` so that every pair meets WCAG AA contrast (4.5:1)
//! in light and dark mode. Where they are used is the templates' business
//! (`style.css` as CSS variables, the email inline).

use minijinja::{context, Value};

/// Backgrounds the accent colour must stay readable on (light, dark mode).
const LIGHT_BACKGROUNDS: [Rgb; 2] = [Rgb(0xff, 0xff, 0xff), Rgb(0xf3, 0xf4, 0xf6)];
const DARK_BACKGROUNDS: [Rgb; 2] = [Rgb(0x16, 0x1b, 0x26), Rgb(0x0b, 0x0f, 0x17)];

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(u8, u8, u8);

impl Rgb {
    /// `#rgb` or `#rrggbb`.
    pub(super) fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(hex.get(i..i + 1)?, 16).ok();
        let pair = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        match hex.len() {
            3 => Some(Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
            6 => Some(Rgb(pair(0)?, pair(2)?, pair(4)?)),
            _ => None,
        }
    }

    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }

    /// WCAG contrast ratio, 1 to 21.
    fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// `t` of the way from `self` to `to`.
    fn mix(self, to: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, to.0), m(self.1, to.1), m(self.2, to.2))
    }

    /// The nearest colour towards `to` with at least AA contrast (4.5:1)
    /// against every one of `backgrounds`.
    fn readable_on(self, backgrounds: &[Rgb], to: Rgb) -> Rgb {
        (0..=20)
            .map(|i| self.mix(to, f64::from(i) / 20.0))
            .find(|c| backgrounds.iter().all(|bg| c.contrast(*bg) >= 4.5))
            .unwrap_or(to)
    }
}

const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
const BLACK: Rgb = Rgb(0, 0, 0);

/// The colours derived from the accent, all meeting WCAG AA contrast.
#[derive(Debug, Clone)]
pub(super) struct Colours {
    accent: String,
    accent_hover: String,
    /// Text on an accent-coloured button.
    on_accent: String,
    /// Links and focus rings on light and dark backgrounds.
    link_light: String,
    link_dark: String,
}

impl Colours {
    pub(super) fn from_accent(accent: Rgb) -> Colours {
        let white_text =
            accent.contrast(WHITE) >= 4.5 || accent.contrast(WHITE) >= accent.contrast(BLACK);
        let (on_accent, hover) = if white_text {
            (WHITE, accent.mix(BLACK, 0.15))
        } else {
            (Rgb(0x11, 0x18, 0x27), accent.mix(WHITE, 0.2))
        };
        Colours {
            accent: accent.hex(),
            accent_hover: hover.hex(),
            on_accent: on_accent.hex(),
            link_light: accent.readable_on(&LIGHT_BACKGROUNDS, BLACK).hex(),
            link_dark: accent.readable_on(&DARK_BACKGROUNDS, WHITE).hex(),
        }
    }

    pub(super) fn context(&self) -> Value {
        context! {
            accent => self.accent,
            accent_hover => self.accent_hover,
            on_accent => self.on_accent,
            link_light => self.link_light,
            link_dark => self.link_dark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accent_colours_meet_contrast() {
        for accent in [
            "#2563eb", "#ffcc00", "#000000", "#ffffff", "#10b981", "#7c3aed",
        ] {
            let c = Colours::from_accent(Rgb::parse(accent).unwrap());
            let rgb = |s: &str| Rgb::parse(s).unwrap();
            assert!(
                rgb(&c.accent).contrast(rgb(&c.on_accent)) >= 4.5,
                "{accent}: {c:?}"
            );
            for bg in LIGHT_BACKGROUNDS {
                assert!(rgb(&c.link_light).contrast(bg) >= 4.5, "{accent}: {c:?}");
            }
            for bg in DARK_BACKGROUNDS {
                assert!(rgb(&c.link_dark).contrast(bg) >= 4.5, "{accent}: {c:?}");
            }
        }
    }
}
