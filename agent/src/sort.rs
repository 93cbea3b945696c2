//! A stable insertion sort. The lists the agent sorts are short (ten
//! interactions, one observer batch), and core's sort costs kilobytes of
//! wasm per element type.

pub fn sort_by_key_f64<T>(v: &mut [T], key: impl Fn(&T) -> f64) {
    for i in 1..v.len() {
        let mut j = i;
        // Strictly greater moves left, so equal keys keep their order.
        while j > 0 && key(&v[j - 1]) > key(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably() {
        let mut v = vec![(3.0, 'a'), (1.0, 'b'), (3.0, 'c'), (2.0, 'd'), (1.0, 'e')];
        sort_by_key_f64(&mut v, |x| x.0);
        assert_eq!(v, vec![(1.0, 'b'), (1.0, 'e'), (2.0, 'd'), (3.0, 'a'), (3.0, 'c')]);
        let mut empty: Vec<(f64, char)> = vec![];
        sort_by_key_f64(&mut empty, |x| x.0);
    }

    #[test]
    fn matches_std_stable_sort_on_pseudo_random_data() {
        let mut seed = 12345u64;
        let mut v: Vec<(f64, usize)> = (0..300)
            .map(|i| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((seed >> 33) % 17) as f64, i)
            })
            .collect();
        let mut expected = v.clone();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0));
        sort_by_key_f64(&mut v, |x| x.0);
        assert_eq!(v, expected);
    }
}
