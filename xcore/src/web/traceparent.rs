//! The W3C `traceparent` header.

use crate::TraceContext;

/// Continues the trace of a `traceparent` header (`00-<trace id>-<parent id>-<flags>`);
/// `None` for a missing or malformed header, which starts a new trace (as the W3C
/// recommendation says) rather than failing the request.
pub(crate) fn parse(value: &[u8]) -> Option<TraceContext> {
    let value = std::str::from_utf8(value).ok()?.trim();
    if !value.is_ascii() {
        return None;
    }
    // Future versions may append fields after a `-`; version `ff` is invalid.
    if value.len() < 55 || (value.len() > 55 && value.as_bytes()[55] != b'-') {
        return None;
    }
    let mut fields = value[..55].split('-');
    let (version, trace, parent, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && value.len() != 55 {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|&t| t != 0)?;
    let parent_id = u64::from_str_radix(parent, 16).ok().filter(|&p| p != 0)?;
    Some(TraceContext::from_parts(trace_id, parent_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_headers_only() {
        let t = parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.parent_span_id(), Some(0x00f067aa0ba902b7));
        for bad in [
            &b""[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01".as_bytes(),
        ] {
            assert!(parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later").is_some());
    }
}
