//! CLS attribution: the largest shift of the session window and its
//! largest source.

/// The index of the largest shift: on ties the later one (the reference's
/// `reduce((a, b) => a.value > b.value ? a : b)`).
pub fn largest_shift(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in values.iter().enumerate() {
        best = match best {
            Some(b) if values[b] > v => Some(b),
            _ => Some(i),
        };
    }
    best
}

/// The source to name: the first whose node is an element, else the
/// first (`sources` are ordered by impact).
pub fn largest_source(is_element: &[bool]) -> Option<usize> {
    if is_element.is_empty() {
        return None;
    }
    Some(is_element.iter().position(|&e| e).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_shift_later_on_ties() {
        assert_eq!(largest_shift(&[]), None);
        assert_eq!(largest_shift(&[0.1]), Some(0));
        assert_eq!(largest_shift(&[0.1, 0.3, 0.2]), Some(1));
        assert_eq!(largest_shift(&[0.3, 0.1, 0.3]), Some(2));
    }

    #[test]
    fn first_element_source() {
        assert_eq!(largest_source(&[]), None);
        assert_eq!(largest_source(&[false, true, true]), Some(1));
        assert_eq!(largest_source(&[false, false]), Some(0));
    }
}
