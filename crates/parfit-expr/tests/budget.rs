//! The memory budget stops symbolic differentiation of a dense model before it exhausts memory. Its own test
//! binary, since it lowers the process-wide budget.

use parfit_expr::{Dialect, compile};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// `s` sums all `n` states and every `F` element reads it, so every partial sum carries a row of
/// derivatives as long as its terms: n²/2 entries in all.
fn dense(n: usize) -> String {
    let terms: Vec<String> = (0..n).map(|k| format!("x_i[{k}]")).collect();
    format!("u_i {{ (0:{n}): x = 1 }}\ns {{ {} }}\nF_i {{ s - x_i }}\n", terms.join(" + "))
}

#[test]
fn a_jacobian_beyond_the_budget_is_refused_at_the_right_hand_side() {
    parfit_core::limits::set_memory_limit(1 << 20);
    let c = compile(&dense(100), Dialect::Ode).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.program.jac_entries.len(), 100 * 99, "the dense pattern, less the zero diagonal");
    let e = compile(&dense(400), Dialect::Ode).unwrap_err();
    assert_eq!((e.pos.line, e.pos.col), (3, 1), "{e}");
    assert!(
        e.message.starts_with("the derivatives of the model's code (for its Jacobian or sensitivities) would need")
    );
    assert!(e.message.contains("more than the limit of 1.0 MiB"), "{e}");
}

/// A system's size is checked against the budget before any code is generated.
#[test]
fn a_system_beyond_the_budget_is_refused_before_code_is_generated() {
    use parfit_expr::system::{Expr, Sensitivities, Site, System, compile_system};
    parfit_core::limits::set_memory_limit(1 << 20);
    let sum = |n: usize| System {
        outputs: vec![("sum".into(), Expr::Op(parfit_expr::Op::Add, vec![Expr::Time; n]))],
        ..System::default()
    };
    assert!(compile_system(&sum(1000), Sensitivities::Jacobian).is_ok());
    let e = compile_system(&sum(5000), Sensitivities::Off).unwrap_err();
    assert_eq!(e.site, Site::Output(0));
    assert!(e.message.starts_with("a system of 5001 expression nodes would need about 1.2 MiB"), "{}", e.message);
}
