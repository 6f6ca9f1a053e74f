//! Exact sums of `f64`s ([`ExactSum`]): a property's sum is the same whatever order its numbers
//! are added (and taken away) in, rounded once at the end, so a connector may keep it as a
//! running total beside its objects and still answer exactly what reading them would.
//!
//! The total is a two's-complement fixed-point number wide enough for any sum of finite `f64`s
//! (a "superaccumulator"): 1,074 bits below the binary point (the smallest subnormal is
//! 2^-1074), 1,024 above it (the largest finite magnitude is below 2^1024), 64 more for up to
//! 2^63 terms, and a sign: 2,163 bits in [`LIMBS`] 64-bit limbs. Adding a number adds its 53-bit
//! mantissa at its exponent (two limbs and a carry); [`ExactSum::value`] rounds the total to the
//! nearest `f64` (ties to even), as `math.fsum` does. Hand-written because the crates that sum
//! exactly keep their state private, and a stored total must have a stable encoding
//! ([`ExactSum::to_bytes`]).

/// 64-bit limbs of the total (little-endian).
pub const LIMBS: usize = 34;
/// Bits of the total below the binary point.
const FRACTION_BITS: i32 = 1074;

/// The exact sum of the `f64`s added, less those taken away.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExactSum {
    limbs: [u64; LIMBS],
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum { limbs: [0; LIMBS] }
    }
}

impl ExactSum {
    /// Bytes of [`ExactSum::to_bytes`].
    pub const BYTES: usize = LIMBS * 8;

    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x`. Infinities and NaN are not numbers a JSON value can hold: they are ignored.
    pub fn add(&mut self, x: f64) {
        self.add_signed(x, false);
    }

    /// Takes `x` away (what [`ExactSum::add`] added, the total is as before).
    pub fn sub(&mut self, x: f64) {
        self.add_signed(x, true);
    }

    /// Adds the total of `other`.
    pub fn add_sum(&mut self, other: &ExactSum) {
        let mut carry = false;
        for (a, b) in self.limbs.iter_mut().zip(other.limbs) {
            let (s, c1) = a.overflowing_add(b);
            let (s, c2) = s.overflowing_add(carry as u64);
            *a = s;
            carry = c1 || c2;
        }
    }

    /// Whether the total is zero.
    pub fn is_zero(&self) -> bool {
        self.limbs.iter().all(|l| *l == 0)
    }

    fn add_signed(&mut self, x: f64, negate: bool) {
        if !x.is_finite() || x == 0.0 {
            return;
        }
        let bits = x.to_bits();
        let negative = (bits >> 63 == 1) != negate;
        let exponent = ((bits >> 52) & 0x7ff) as u32;
        let fraction = bits & ((1 << 52) - 1);
        // x = mantissa × 2^(shift − 1074): subnormals have no implicit bit and the exponent of
        // the smallest normals.
        let (mantissa, shift) = if exponent == 0 {
            (fraction, 0)
        } else {
            (fraction | 1 << 52, exponent - 1)
        };
        let at = (shift / 64) as usize;
        let offset = shift % 64;
        let lo = mantissa << offset;
        let hi = if offset == 0 {
            0
        } else {
            mantissa >> (64 - offset)
        };
        let mut carry = false;
        for (i, limb) in self.limbs.iter_mut().enumerate().skip(at) {
            let part = match i - at {
                0 => lo,
                1 => hi,
                _ => 0,
            };
            if i > at + 1 && !carry {
                break;
            }
            if negative {
                let (d, b1) = limb.overflowing_sub(part);
                let (d, b2) = d.overflowing_sub(carry as u64);
                *limb = d;
                carry = b1 || b2;
            } else {
                let (s, c1) = limb.overflowing_add(part);
                let (s, c2) = s.overflowing_add(carry as u64);
                *limb = s;
                carry = c1 || c2;
            }
        }
    }

    /// The total rounded to the nearest `f64` (ties to even); ±infinity beyond the largest.
    pub fn value(&self) -> f64 {
        let negative = self.limbs[LIMBS - 1] >> 63 == 1;
        let mut m = self.limbs;
        if negative {
            let mut carry = true;
            for limb in m.iter_mut() {
                let (s, c) = (!*limb).overflowing_add(carry as u64);
                *limb = s;
                carry = c;
            }
        }
        let Some(top) = (0..LIMBS).rev().find(|&i| m[i] != 0) else {
            return 0.0;
        };
        let highest = top as u32 * 64 + 63 - m[top].leading_zeros();
        let magnitude = if highest < 64 {
            // Rounded at most once (above 2^53), then scaled exactly: below 2^52 it is an
            // exact subnormal, from 2^52 a normal number.
            scale(m[0] as f64, -FRACTION_BITS)
        } else {
            // The 64 bits from `highest` down, the lowest of them also standing for every bit
            // below (a sticky bit: 64 > 53 + 2, so rounding them rounds the whole).
            let start = highest - 63;
            let (limb, offset) = ((start / 64) as usize, start % 64);
            let mut bits = m[limb] >> offset;
            if offset > 0 && limb + 1 < LIMBS {
                bits |= m[limb + 1] << (64 - offset);
            }
            let below = m[..limb].iter().any(|l| *l != 0)
                || (offset > 0 && m[limb] & ((1u64 << offset) - 1) != 0);
            scale((bits | below as u64) as f64, start as i32 - FRACTION_BITS)
        };
        if negative {
            -magnitude
        } else {
            magnitude
        }
    }

    /// The total as bytes (limbs little-endian), for storing.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.limbs) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// The total of [`ExactSum::to_bytes`]'s bytes; `None` for bytes of another length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::BYTES {
            return None;
        }
        let mut limbs = [0u64; LIMBS];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(ExactSum { limbs })
    }
}

impl FromIterator<f64> for ExactSum {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut s = ExactSum::new();
        for x in iter {
            s.add(x);
        }
        s
    }
}

/// `x × 2^e`, in steps that stay within the normal range (exact unless the result itself
/// rounds).
fn scale(mut x: f64, mut e: i32) -> f64 {
    let power = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    while e > 1023 {
        x *= power(1023);
        e -= 1023;
    }
    while e < -1022 {
        x *= power(-1022);
        e += 1022;
    }
    x * power(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (the tests need no crate for randomness).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// A finite `f64` of any sign and exponent.
        fn any_finite(&mut self) -> f64 {
            loop {
                let x = f64::from_bits(self.next());
                if x.is_finite() {
                    return x;
                }
            }
        }
    }

    #[test]
    fn sums_are_rounded_once_like_fsum() {
        // math.fsum([0.1, 0.2, 0.3]) == 0.6; a plain sum gives 0.6000000000000001.
        assert_eq!(
            [0.1, 0.2, 0.3].into_iter().collect::<ExactSum>().value(),
            0.6
        );
        assert_eq!(
            [1e100, 1.0, -1e100]
                .into_iter()
                .collect::<ExactSum>()
                .value(),
            1.0
        );
        assert_eq!(
            [1e308, 1e308, -1e308, -1e308, 1.0]
                .into_iter()
                .collect::<ExactSum>()
                .value(),
            1.0
        );
        assert_eq!(
            [5e-324, 5e-324].into_iter().collect::<ExactSum>().value(),
            1e-323
        );
        assert_eq!([-2.5, 1.0].into_iter().collect::<ExactSum>().value(), -1.5);
        assert_eq!(
            [f64::MAX, f64::MAX]
                .into_iter()
                .collect::<ExactSum>()
                .value(),
            f64::INFINITY
        );
        assert_eq!(
            [f64::MAX, f64::MAX, -f64::MAX]
                .into_iter()
                .collect::<ExactSum>()
                .value(),
            f64::MAX
        );
        assert_eq!(
            [-f64::MAX, -f64::MAX]
                .into_iter()
                .collect::<ExactSum>()
                .value(),
            f64::NEG_INFINITY
        );
        assert_eq!(ExactSum::new().value(), 0.0);
        // 2^53 + 1 + 1: a plain sum loses both ones.
        let big = 9_007_199_254_740_992.0;
        assert_eq!(
            [big, 1.0, 1.0].into_iter().collect::<ExactSum>().value(),
            big + 2.0
        );
    }

    #[test]
    fn sums_of_fixed_point_numbers_match_an_exact_integer_sum() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for scale_bits in [0, 30, 1060] {
            let unit = scale(1.0, -scale_bits);
            let mut exact: i128 = 0;
            let mut sum = ExactSum::new();
            for _ in 0..10_000 {
                let k = (rng.next() >> 12) as i64 * if rng.next() & 1 == 0 { 1 } else { -1 };
                exact += k as i128;
                sum.add(k as f64 * unit);
            }
            assert_eq!(
                sum.value(),
                scale(exact as f64, -scale_bits),
                "unit 2^-{scale_bits}"
            );
        }
    }

    #[test]
    fn the_total_does_not_depend_on_the_order_and_taking_away_undoes_adding() {
        let mut rng = Rng(42);
        let xs: Vec<f64> = (0..5_000).map(|_| rng.any_finite()).collect();
        let forward: ExactSum = xs.iter().copied().collect();
        let backward: ExactSum = xs.iter().rev().copied().collect();
        assert_eq!(forward, backward);
        assert_eq!(forward.value().to_bits(), backward.value().to_bits());
        let mut shuffled = xs.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        assert_eq!(shuffled.iter().copied().collect::<ExactSum>(), forward);
        let mut s = forward;
        for x in &shuffled[..2_500] {
            s.sub(*x);
        }
        assert_eq!(s, shuffled[2_500..].iter().copied().collect::<ExactSum>());
        for x in &shuffled[2_500..] {
            s.sub(*x);
        }
        assert!(s.is_zero());
        let mut halves: ExactSum = xs[..100].iter().copied().collect();
        halves.add_sum(&xs[100..].iter().copied().collect());
        assert_eq!(halves, forward);
    }

    #[test]
    fn a_single_number_comes_back_exactly_and_bytes_round_trip() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let x = rng.any_finite();
            let s: ExactSum = [x].into_iter().collect();
            assert_eq!(s.value().to_bits(), if x == 0.0 { 0 } else { x.to_bits() });
            assert_eq!(ExactSum::from_bytes(&s.to_bytes()), Some(s));
        }
        assert_eq!(ExactSum::from_bytes(&[0; 8]), None);
    }
}
