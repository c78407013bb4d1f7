//! Python's and numpy's number rules, reproduced so that results agree to the last bit.
//!
//! nltk mixes exact `fractions.Fraction` arithmetic with floats and sums with `math.fsum`;
//! pycocoevalcap averages with numpy's pairwise summation. Each is reproduced here once.

use std::cmp::Ordering;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};

/// A Python number as nltk's smoothing code sees it: an `int`, an exact `Fraction` or a `float`.
///
/// Arithmetic follows Python: ints and fractions combine exactly, with unbounded integers (nltk's
/// method 6 builds fractions of forty digits and more), but `int / int` is a float; anything with a
/// float gives a float, the exact value converted with correct rounding first.
#[derive(Debug, Clone)]
pub(crate) enum PyNum {
    /// A non-negative Python int.
    Int(BigUint),
    /// `numerator / denominator`, as given (not reduced: nltk reads `.numerator` of unreduced
    /// fractions); the denominator is never zero.
    Fraction(BigUint, BigUint),
    /// A Python float.
    Float(f64),
}

impl PyNum {
    /// The integer `value`.
    pub fn int(value: impl Into<BigUint>) -> Self {
        PyNum::Int(value.into())
    }

    /// The fraction `numerator / denominator`, kept unreduced.
    pub fn fraction(numerator: impl Into<BigUint>, denominator: impl Into<BigUint>) -> Self {
        PyNum::Fraction(numerator.into(), denominator.into())
    }

    /// A parameter given as a float: integral values behave like Python ints (nltk's defaults
    /// `alpha=5`, `k=5` are ints), others like floats.
    pub fn param(value: f64) -> Self {
        if value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
            PyNum::int(value as u64)
        } else {
            PyNum::Float(value)
        }
    }

    /// `float(self)`, correctly rounded.
    pub fn to_f64(&self) -> f64 {
        match self {
            PyNum::Int(n) => ratio_to_f64(n, &BigUint::one()),
            PyNum::Fraction(n, d) => ratio_to_f64(n, d),
            PyNum::Float(x) => *x,
        }
    }

    /// The numerator of an int or fraction as stored (nltk's `p_i.numerator`).
    pub fn numerator(&self) -> Option<&BigUint> {
        match self {
            PyNum::Int(n) | PyNum::Fraction(n, _) => Some(n),
            PyNum::Float(_) => None,
        }
    }

    /// The denominator of a fraction as stored (nltk's `p_i.denominator`).
    pub fn denominator(&self) -> Option<&BigUint> {
        match self {
            PyNum::Int(_) | PyNum::Float(_) => None,
            PyNum::Fraction(_, d) => Some(d),
        }
    }

    /// True when the value is zero (`x == 0` in Python).
    pub fn is_zero(&self) -> bool {
        match self {
            PyNum::Int(n) | PyNum::Fraction(n, _) => n.is_zero(),
            PyNum::Float(x) => *x == 0.0,
        }
    }

    /// `self > 0`.
    pub fn is_positive(&self) -> bool {
        match self {
            PyNum::Int(n) | PyNum::Fraction(n, _) => !n.is_zero(),
            PyNum::Float(x) => *x > 0.0,
        }
    }

    /// The exact value as `(numerator, denominator)`, or `None` for a float.
    fn exact(&self) -> Option<(&BigUint, std::borrow::Cow<'_, BigUint>)> {
        match self {
            PyNum::Int(n) => Some((n, std::borrow::Cow::Owned(BigUint::one()))),
            PyNum::Fraction(n, d) => Some((n, std::borrow::Cow::Borrowed(d))),
            PyNum::Float(_) => None,
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &PyNum) -> PyNum {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Int(a + b),
            _ => match (self.exact(), other.exact()) {
                (Some((a, b)), Some((c, d))) => reduced(a * d.as_ref() + c * b.as_ref(), b.as_ref() * d.as_ref()),
                _ => PyNum::Float(self.to_f64() + other.to_f64()),
            },
        }
    }

    /// `self * other`.
    pub fn mul(&self, other: &PyNum) -> PyNum {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Int(a * b),
            _ => match (self.exact(), other.exact()) {
                (Some((a, b)), Some((c, d))) => reduced(a * c, b.as_ref() * d.as_ref()),
                _ => PyNum::Float(self.to_f64() * other.to_f64()),
            },
        }
    }

    /// `self / other` (true division), with `other` non-zero.
    pub fn div(&self, other: &PyNum) -> PyNum {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Float(ratio_to_f64(a, b)),
            _ => match (self.exact(), other.exact()) {
                (Some((a, b)), Some((c, d))) if !c.is_zero() => reduced(a * d.as_ref(), b.as_ref() * c),
                _ => PyNum::Float(self.to_f64() / other.to_f64()),
            },
        }
    }

    /// `self ** 2`: exact for ints and fractions, C `pow` for floats as Python's `float.__pow__`.
    pub fn squared(&self) -> PyNum {
        match self {
            PyNum::Float(x) => PyNum::Float(python_pow(*x, 2.0)),
            exact => exact.mul(exact),
        }
    }
}

/// Python's `x ** y` on floats: C `pow`, called for real. The compiler would otherwise turn
/// `powf(x, 2.0)` into `x * x`, which glibc's `pow` (accurate to 0.52 ulp, not correctly rounded)
/// need not equal.
pub(crate) fn python_pow(x: f64, y: f64) -> f64 {
    x.powf(std::hint::black_box(y))
}

/// `n / d` as a reduced fraction.
fn reduced(n: BigUint, d: BigUint) -> PyNum {
    let g = n.gcd(&d);
    if g.is_one() || g.is_zero() { PyNum::Fraction(n, d) } else { PyNum::Fraction(n / &g, d / &g) }
}

/// `n / d` rounded to the nearest float, ties to even, as Python's `int / int` does.
pub(crate) fn ratio_to_f64(n: &BigUint, d: &BigUint) -> f64 {
    if let (Some(a), Some(b)) = (n.to_u64(), d.to_u64())
        && a < (1 << 53)
        && b < (1 << 53)
    {
        return a as f64 / b as f64;
    }
    if n.is_zero() {
        return 0.0;
    }
    // Scale so that the quotient has 55 or 56 bits, then round to 53 with a sticky bit.
    let shift = 55 + d.bits() as i64 - n.bits() as i64;
    let (quotient, remainder) =
        if shift >= 0 { (n << shift as u64).div_rem(d) } else { n.div_rem(&(d << (-shift) as u64)) };
    let excess = quotient.bits() - 53;
    let dropped = (&quotient & ((BigUint::one() << excess) - 1u32)).to_u64().expect("at most 3 bits");
    let half = 1u64 << (excess - 1);
    let mut mantissa = (&quotient >> excess).to_u64().expect("53 bits");
    let sticky = !remainder.is_zero() || dropped & (half - 1) != 0;
    if dropped & half != 0 && (sticky || mantissa & 1 == 1) {
        mantissa += 1;
    }
    mantissa as f64 * 2f64.powi(excess as i32 - shift as i32)
}

impl PartialEq for PyNum {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for PyNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.exact(), other.exact()) {
            (Some((a, b)), Some((c, d))) => Some((a * d.as_ref()).cmp(&(c * b.as_ref()))),
            _ => self.to_f64().partial_cmp(&other.to_f64()),
        }
    }
}

/// Python's `math.fsum`: the correctly rounded sum (Shewchuk's algorithm, with CPython's final
/// half-even correction). Inputs must be finite.
pub(crate) fn fsum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in values {
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        if x != 0.0 {
            partials.push(x);
        }
    }
    let Some(mut hi) = partials.pop() else { return 0.0 };
    let mut lo = 0.0;
    while let Some(y) = partials.pop() {
        let x = hi;
        hi = x + y;
        lo = y - (hi - x);
        if lo != 0.0 {
            break;
        }
    }
    if let Some(&last) = partials.last()
        && ((lo < 0.0 && last < 0.0) || (lo > 0.0 && last > 0.0))
    {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

/// `numpy.mean` of a float64 array: numpy's pairwise summation divided by the length.
pub(crate) fn numpy_mean(values: &[f64]) -> f64 {
    numpy_sum(values) / values.len() as f64
}

/// numpy's `pairwise_sum` for contiguous float64 data (blocks of 128, eight accumulators).
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |sum, &x| sum + x)
    } else if n <= BLOCK {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            sum += x;
        }
        sum
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(n: u128, d: u128) -> f64 {
        ratio_to_f64(&BigUint::from(n), &BigUint::from(d))
    }

    #[test]
    fn ratio_rounds_like_python_int_division() {
        // Values printed by CPython for the same divisions.
        assert_eq!(ratio(10u128.pow(30) + 1, 3 * 10u128.pow(29)), 3.3333333333333335);
        assert_eq!(ratio(1 << 100, (1 << 100) - 1), 1.0);
        assert_eq!(ratio(7 << 60, 3 << 60), 2.3333333333333335);
        assert_eq!(ratio(1, 3), 1.0 / 3.0);
        let big_n: BigUint = "546698856789061885671982839908894351261356".parse().unwrap();
        let big_d: BigUint = "4911149499023531002730249853772092119250000".parse().unwrap();
        assert_eq!(ratio_to_f64(&big_n, &big_d), 0.11131790162318625);
    }

    #[test]
    fn fsum_is_exact() {
        assert_eq!(fsum([0.1; 10]), 1.0);
        assert_eq!(fsum([1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50]), 1e-100);
        assert_eq!(fsum([]), 0.0);
        assert_eq!(fsum([2.0f64.powi(53), 1.0, 2.0f64.powi(-100)]), 2.0f64.powi(53) + 2.0);
    }

    #[test]
    fn fractions_stay_exact() {
        let third = PyNum::fraction(1u32, 3u32);
        assert_eq!(third.add(&third).add(&third).to_f64(), 1.0);
        assert!(matches!(third.add(&PyNum::Float(0.5)), PyNum::Float(_)));
        assert!(matches!(PyNum::param(5.0), PyNum::Int(_)));
        assert!(matches!(PyNum::param(0.5), PyNum::Float(_)));
        // Python: 1 / 3 is a float, Fraction(1, 1) / 3 a fraction.
        assert!(matches!(PyNum::int(1u32).div(&PyNum::int(3u32)), PyNum::Float(_)));
        assert_eq!(PyNum::fraction(1u32, 1u32).div(&PyNum::int(3u32)), third);
        assert!(matches!(PyNum::fraction(1u32, 1u32).div(&PyNum::int(3u32)), PyNum::Fraction(..)));
    }

    #[test]
    fn numpy_sum_matches_sequential_sum_for_short_arrays() {
        assert_eq!(numpy_sum(&[1.0, 2.0, 3.0]), 6.0);
        let long: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(numpy_sum(&long), 499_500.0);
    }
}
