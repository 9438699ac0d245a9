//! Seeded mutations of sample inputs: the randomized test every parser keeps in CI
//! (bytes inserted, removed, replaced and spliced from an alphabet the format uses), so
//! a panic found by the fuzzers' kind of input is found again on every run, not only
//! when someone runs cargo-fuzz.

/// Calls `check` with `rounds` mutations of `seeds` (a fixed `seed`: the same inputs
/// every run). `alphabet`: the bytes the format is made of.
pub fn mutations(seeds: &[&str], alphabet: &[u8], rounds: usize, seed: u64, mut check: impl FnMut(&[u8])) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for round in 0..rounds {
        let mut t: Vec<u8> = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..rng.usize(1..8) {
            let i = rng.usize(..=t.len());
            match rng.u8(..4) {
                0 if i < t.len() => drop(t.remove(i)),
                1 if i < t.len() => t[i] = alphabet[rng.usize(..alphabet.len())],
                2 => {
                    // A slice of another seed: structure in the wrong place.
                    let other = seeds[rng.usize(..seeds.len())].as_bytes();
                    let a = rng.usize(..=other.len());
                    let b = rng.usize(a..=other.len().min(a + 32));
                    t.splice(i..i, other[a..b].iter().copied());
                }
                _ => t.insert(i, alphabet[rng.usize(..alphabet.len())]),
            }
        }
        check(&t);
    }
}
