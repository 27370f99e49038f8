//! The PromQL function table: argument types, arity and return type of every function, so the
//! parser can reject unknown or disabled functions and the checker can type calls.

use super::ast::ValueType;

/// Signature of one PromQL function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSig {
    /// Name as written in queries (case-sensitive, lower case).
    pub name: &'static str,
    /// Declared argument types; arguments past the end take the type of the last one.
    pub args: &'static [ValueType],
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted; `None` for unlimited (`label_join`, `sort_by_label`).
    pub max_args: Option<usize>,
    /// Type of the call's result.
    pub ret: ValueType,
    /// Experimental or native-histogram function: rejected unless experimental functions are
    /// enabled in the parse options (Prometheus: `--enable-feature=promql-experimental-functions`).
    pub experimental: bool,
}

impl FunctionSig {
    /// The expected type of argument `i` (0-based).
    pub fn arg_type(&self, i: usize) -> ValueType {
        self.args
            .get(i)
            .or(self.args.last())
            .copied()
            .unwrap_or(ValueType::Scalar)
    }

    /// Whether `n` arguments are acceptable.
    pub fn accepts_arity(&self, n: usize) -> bool {
        n >= self.min_args && self.max_args.is_none_or(|m| n <= m)
    }
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// Fixed arity: exactly the declared arguments.
const fn fixed(name: &'static str, args: &'static [ValueType], ret: ValueType) -> FunctionSig {
    FunctionSig {
        name,
        args,
        min_args: args.len(),
        max_args: Some(args.len()),
        ret,
        experimental: false,
    }
}

/// Arity between `min` and `max` (`None` = unlimited).
const fn var(
    name: &'static str,
    args: &'static [ValueType],
    min: usize,
    max: Option<usize>,
    ret: ValueType,
) -> FunctionSig {
    FunctionSig {
        name,
        args,
        min_args: min,
        max_args: max,
        ret,
        experimental: false,
    }
}

/// Marks a signature experimental.
const fn exp(sig: FunctionSig) -> FunctionSig {
    FunctionSig {
        experimental: true,
        ..sig
    }
}

/// Every function klaxon knows, sorted by name (binary-searched by [`lookup`]).
pub static FUNCTIONS: &[FunctionSig] = &[
    fixed("abs", &[V], V),
    fixed("absent", &[V], V),
    fixed("absent_over_time", &[M], V),
    fixed("acos", &[V], V),
    fixed("acosh", &[V], V),
    fixed("asin", &[V], V),
    fixed("asinh", &[V], V),
    fixed("atan", &[V], V),
    fixed("atanh", &[V], V),
    fixed("avg_over_time", &[M], V),
    fixed("ceil", &[V], V),
    fixed("changes", &[M], V),
    fixed("clamp", &[V, S, S], V),
    fixed("clamp_max", &[V, S], V),
    fixed("clamp_min", &[V, S], V),
    fixed("cos", &[V], V),
    fixed("cosh", &[V], V),
    fixed("count_over_time", &[M], V),
    var("day_of_month", &[V], 0, Some(1), V),
    var("day_of_week", &[V], 0, Some(1), V),
    var("day_of_year", &[V], 0, Some(1), V),
    var("days_in_month", &[V], 0, Some(1), V),
    fixed("deg", &[V], V),
    fixed("delta", &[M], V),
    fixed("deriv", &[M], V),
    exp(fixed("double_exponential_smoothing", &[M, S, S], V)),
    fixed("exp", &[V], V),
    exp(fixed("first_over_time", &[M], V)),
    fixed("floor", &[V], V),
    fixed("histogram_avg", &[V], V),
    fixed("histogram_count", &[V], V),
    fixed("histogram_fraction", &[S, S, V], V),
    fixed("histogram_quantile", &[S, V], V),
    exp(var("histogram_quantiles", &[V, Str, S], 3, None, V)),
    fixed("histogram_stddev", &[V], V),
    fixed("histogram_stdvar", &[V], V),
    fixed("histogram_sum", &[V], V),
    var("hour", &[V], 0, Some(1), V),
    fixed("idelta", &[M], V),
    fixed("increase", &[M], V),
    exp(var("info", &[V, V], 1, Some(2), V)),
    fixed("irate", &[M], V),
    var("label_join", &[V, Str, Str, Str], 3, None, V),
    fixed("label_replace", &[V, Str, Str, Str, Str], V),
    fixed("last_over_time", &[M], V),
    fixed("ln", &[V], V),
    fixed("log10", &[V], V),
    fixed("log2", &[V], V),
    exp(fixed("mad_over_time", &[M], V)),
    fixed("max_over_time", &[M], V),
    fixed("min_over_time", &[M], V),
    var("minute", &[V], 0, Some(1), V),
    var("month", &[V], 0, Some(1), V),
    fixed("pi", &[], S),
    fixed("predict_linear", &[M, S], V),
    fixed("present_over_time", &[M], V),
    fixed("quantile_over_time", &[S, M], V),
    fixed("rad", &[V], V),
    fixed("rate", &[M], V),
    fixed("resets", &[M], V),
    var("round", &[V, S], 1, Some(2), V),
    fixed("scalar", &[V], S),
    fixed("sgn", &[V], V),
    fixed("sin", &[V], V),
    fixed("sinh", &[V], V),
    fixed("sort", &[V], V),
    exp(var("sort_by_label", &[V, Str], 1, None, V)),
    exp(var("sort_by_label_desc", &[V, Str], 1, None, V)),
    fixed("sort_desc", &[V], V),
    fixed("sqrt", &[V], V),
    fixed("stddev_over_time", &[M], V),
    fixed("stdvar_over_time", &[M], V),
    fixed("sum_over_time", &[M], V),
    fixed("tan", &[V], V),
    fixed("tanh", &[V], V),
    fixed("time", &[], S),
    fixed("timestamp", &[V], V),
    exp(fixed("ts_of_first_over_time", &[M], V)),
    exp(fixed("ts_of_last_over_time", &[M], V)),
    exp(fixed("ts_of_max_over_time", &[M], V)),
    exp(fixed("ts_of_min_over_time", &[M], V)),
    fixed("vector", &[S], V),
    var("year", &[V], 0, Some(1), V),
];

/// Looks a function up by its exact (case-sensitive) name.
pub fn lookup(name: &str) -> Option<&'static FunctionSig> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(
            FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name),
            "FUNCTIONS must stay sorted for lookup"
        );
    }

    #[test]
    fn lookups() {
        let rate = lookup("rate").expect("rate");
        assert_eq!(rate.arg_type(0), ValueType::Matrix);
        assert!(rate.accepts_arity(1) && !rate.accepts_arity(2));
        let join = lookup("label_join").expect("label_join");
        assert_eq!(join.arg_type(7), ValueType::String);
        assert!(join.accepts_arity(3) && join.accepts_arity(9) && !join.accepts_arity(2));
        assert!(lookup("hour").is_some_and(|f| f.accepts_arity(0)));
        assert!(lookup("sort_by_label").is_some_and(|f| f.experimental));
        assert!(lookup("RATE").is_none());
        assert!(lookup("holt_winters").is_none());
    }
}
