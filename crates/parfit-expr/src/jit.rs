//! Native code for a program's hot sections (right-hand side, Jacobian, outputs and the parts of the sensitivity
//! right-hand side), generated with Cranelift (native targets only; wasm32 keeps the interpreter).
//!
//! Each compiled function is straight-line code over SSA values: it loads only what its section reads
//! from outside itself (`t`, the state, parameters and parameter-level results), embeds constants, and
//! stores only its results. Every operation is the interpreter's: the four arithmetic operations, `sqrt`,
//! `abs`, `neg`, `copysign`, `trunc`, `min`, `max`, comparisons and selections are single IEEE instructions (or
//! a comparison and a selection) with the same rounding (products and sums stay separate instructions —
//! Cranelift fuses nothing it is not asked to), reads of tables at 0, 1, 2, … are loads, and every other
//! operation calls [`Op::apply`] (or [`LookupTable::apply`]) through an `extern "C"` wrapper, so JIT and
//! interpreter give the same bits.
//!
//! A projection's month loop ([`compile_month_loop`]) is one function: the recursions are carried in machine
//! registers from month to month (sums, which nothing else reads, are added to in memory), and calls whose
//! operands do not depend on the state are remembered with their operands and made again only when those
//! change, through a cache kept from one policy to the next ([`CallCache`]). A third variant runs two policies at once, the state
//! in the f64 lanes of vector registers ([`MonthLoop::run_lanes`]), each lane to the bit its own run.
//!
//! This is the one module of the crate allowed `unsafe`: calling generated code through a function pointer
//! and releasing its memory. Each block says why it is sound.
#![allow(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, Endianness, FuncRef, InstBuilder, InstructionData, MemFlags, Opcode, Value, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use crate::eval::{Instr, Op, Program, operand_count};
use crate::lookup::LookupTable;
use crate::system::LookupMode;

/// A signaling NaN's bits: no region key has them (keys are results of arithmetic, which gives quiet NaNs only).
const NO_KEY: u64 = 0x7FF0_0000_0000_0001;

/// 2^52: a whole number below it added to it is exact and lands in the mantissa's low bits.
const TWO_TO_52: f64 = 4_503_599_627_370_496.0;

/// How many instructions a value loaded from outside a section is reused for before it is loaded again.
const RELOAD_AFTER: usize = 64;

/// The most policy values a month loop loads once before its first month; past this it loads them where
/// they are read.
const MAX_PRELOADED: usize = 48;

/// A compiled section: `f(regs, t, y, out)` reads parameter-level registers from `regs`, the state from
/// `y` and writes its results, in order, to `out`.
type Entry = unsafe extern "C" fn(*const f64, f64, *const f64, *mut f64);

/// One compiled section and the number of values it writes.
#[derive(Clone, Copy)]
struct Section {
    entry: Entry,
    n_out: usize,
}

/// A program's native code: right-hand side, right-hand side with Jacobian entries, outputs, and (for a
/// program with sensitivity code) the parts of the sensitivity equations' right-hand side.
pub struct Native {
    rhs: Section,
    jac: Option<Section>,
    out: Option<Section>,
    sens: Option<Section>,
    /// Tangent mode: the right-hand side storing `F` and then the values the tangent code reads (the
    /// registers `tan_keep`), and the tangent code storing `Ḟ`.
    tangent: Option<(Section, Section)>,
    tan_keep: Vec<u32>,
    n_states: usize,
    n_regs: usize,
    /// Own the code memory; released on drop.
    modules: Vec<JITModule>,
    /// The tables the code reads by address: kept alive as long as the code.
    tables: Arc<[LookupTable]>,
}

// SAFETY: after `finalize_definitions` the module is never touched again until drop: the code memory is
// read-only and executable, and the entry points are plain functions that keep no state, so sharing and
// calling them from any thread is sound. The module's non-`Send` parts (its symbol table's raw pointers)
// are only read while compiling, which happens before the value exists.
unsafe impl Send for Native {}
// SAFETY: as above; nothing reachable through `&Native` is mutated.
unsafe impl Sync for Native {}

impl Drop for Native {
    fn drop(&mut self) {
        for m in self.modules.drain(..) {
            // SAFETY: the entry points are only reachable through `self`, which is being dropped, so no
            // compiled function is running or will be called again.
            unsafe { m.free_memory() };
        }
    }
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("jacobian", &self.jac.is_some())
            .field("outputs", &self.out.is_some())
            .field("sensitivities", &self.sens.is_some())
            .field("tables", &self.tables.len())
            .finish()
    }
}

impl Native {
    /// Call a section. Panics (a bug, not a model error) if the slices are shorter than the program
    /// needs; the checks make the call sound.
    #[inline(always)]
    fn call(&self, s: Section, regs: &[f64], t: f64, y: &[f64], out: &mut [f64]) {
        assert!(regs.len() >= self.n_regs && y.len() >= self.n_states && out.len() >= s.n_out);
        // SAFETY: the code reads registers below `n_regs` from `regs`, states below `n_states` from `y`
        // and writes `n_out` values to `out` (all checked above), keeps no pointer after returning, and
        // was generated for the C calling convention of this host, which `Entry` declares.
        unsafe { (s.entry)(regs.as_ptr(), t, y.as_ptr(), out.as_mut_ptr()) };
    }

    pub fn rhs(&self, regs: &[f64], t: f64, y: &[f64], dy: &mut [f64]) {
        self.call(self.rhs, regs, t, y, dy);
    }

    /// The Jacobian entries in the order of [`Program::jac_entries`]; `false` if there is no native code.
    pub fn jacobian_values(&self, regs: &[f64], t: f64, y: &[f64], values: &mut [f64]) -> bool {
        self.jac.map(|s| self.call(s, regs, t, y, values)).is_some()
    }

    /// The outputs; `false` if there is no native code (the program has no output code).
    pub fn outputs(&self, regs: &[f64], t: f64, y: &[f64], out: &mut [f64]) -> bool {
        self.out.map(|s| self.call(s, regs, t, y, out)).is_some()
    }

    /// The right-hand side, then the Jacobian entries, then the ∂F/∂p entries (in the orders of
    /// [`Program::jac_entries`] and [`Program::pjac_entries`]); `false` if the program has no sensitivity code.
    pub fn sensitivity_parts(&self, regs: &[f64], t: f64, y: &[f64], parts: &mut [f64]) -> bool {
        self.sens.map(|s| self.call(s, regs, t, y, parts)).is_some()
    }

    /// The registers of the right-hand-side results the tangent code reads; `None` without tangent code.
    pub fn tangent_keep(&self) -> Option<&[u32]> {
        self.tangent.map(|_| &self.tan_keep[..])
    }

    /// `F`, then the values of [`Native::tangent_keep`]'s registers, which the caller stores in them.
    pub fn tangent_primal(&self, regs: &[f64], t: f64, y: &[f64], out: &mut [f64]) {
        if let Some((primal, _)) = self.tangent {
            self.call(primal, regs, t, y, out);
        }
    }

    /// `Ḟ` for the tangent inputs in `regs`, after [`Native::tangent_primal`]'s values were stored.
    pub fn tangent(&self, regs: &[f64], t: f64, y: &[f64], df: &mut [f64]) {
        if let Some((_, tangent)) = self.tangent {
            self.call(tangent, regs, t, y, df);
        }
    }
}

macro_rules! wrappers {
    ($($name:ident $op:ident,)*) => {
        $(extern "C" fn $name(a: f64, b: f64) -> f64 {
            Op::$op.apply(a, b, 0.0, 0.0)
        })*
        /// The operations compiled as calls: symbol, operation, wrapper.
        const CALLS: &[(&str, Op, extern "C" fn(f64, f64) -> f64)] = &[$((stringify!($name), Op::$op, $name),)*];
    };
}

wrappers! {
    parfit_pow Pow, parfit_exp Exp, parfit_log Log, parfit_log10 Log10,
    parfit_sin Sin, parfit_cos Cos, parfit_tan Tan, parfit_sinh Sinh, parfit_cosh Cosh, parfit_tanh Tanh,
    parfit_asinh Asinh, parfit_acosh Acosh, parfit_sigmoid Sigmoid, parfit_asin Asin, parfit_acos Acos,
    parfit_atan Atan, parfit_modulo Modulo, parfit_erf Erf, parfit_erfc Erfc,
}

/// The table operations, numbered by their place here: native code passes the number to [`parfit_table`].
const TABLE_OPS: [Op; 11] = {
    use LookupMode::*;
    [
        Op::Lookup(Interpolate),
        Op::Lookup(Extrapolate),
        Op::Lookup(Forward),
        Op::Lookup(Backward),
        Op::Lookup(Invert),
        Op::LookupSlope(Interpolate),
        Op::LookupSlope(Extrapolate),
        Op::LookupSlope(Forward),
        Op::LookupSlope(Backward),
        Op::LookupSlope(Invert),
        Op::LookupArea,
    ]
};

/// A table read from native code: operation number `op` of [`TABLE_OPS`] on `table` (the interpreter's
/// [`LookupTable::apply`]).
extern "C" fn parfit_table(table: *const LookupTable, op: u32, a: f64, b: f64) -> f64 {
    // SAFETY: native code passes the address of a table inside the `Arc<[LookupTable]>` its `Native` holds
    // (`Native::tables`), and it runs only through a `&Native`, so the table is alive; tables are never
    // mutated after they are shared.
    let table = unsafe { &*table };
    TABLE_OPS.get(op as usize).map_or(f64::NAN, |&op| table.apply(op, a, b))
}

/// The most operations (instructions and stored results, over every section) the JIT compiles. Compile time
/// is linear in them, about 3 s per 10⁵ on one core; past this bound the interpreter, which needs no
/// compilation, is the faster choice for any run short enough to wait for.
pub const MAX_OPERATIONS: usize = 500_000;

/// Compile the program's right-hand side, Jacobian and output code. A failure is a message; the caller
/// keeps the interpreter.
pub fn compile(p: &Program) -> Result<Native, String> {
    let (rhs, jac, out, pjac) = (p.rhs.len(), p.jac.len(), p.out.len(), p.pjac.len());
    let (nf, nj, no, npj) = (p.f.len(), p.jac_entries.len(), p.out_regs.len(), p.pjac_entries.len());
    let sensitivities = if p.sensitivities { rhs + jac + pjac + nf + nj + npj } else { 0 };
    // A program without Jacobian code (Monte Carlo, or a system compiled without sensitivities) needs no
    // second copy of its right-hand side.
    let has_jac = !(p.jac.is_empty() && p.jac_entries.is_empty());
    let jac_operations = if has_jac { rhs + jac + nj } else { 0 };
    // Tangent mode: the right-hand side again, storing what the tangent code reads of it, and that code.
    let tan_keep: Vec<u32> = if p.tangent {
        let rhs_results: std::collections::HashSet<u32> = p.rhs.iter().map(|i| i.dst).collect();
        let mut keep: Vec<u32> =
            p.tan_rhs.iter().flat_map(|i| [i.a, i.b, i.c, i.d].into_iter().take(operand_count(i.op))).collect();
        keep.retain(|r| rhs_results.contains(r));
        keep.sort_unstable();
        keep.dedup();
        keep
    } else {
        Vec::new()
    };
    let tangent = if p.tangent { rhs + nf + tan_keep.len() + p.tan_rhs.len() + p.tan_f.len() } else { 0 };
    let outputs = if p.tangent { 0 } else { out + no };
    let operations = (rhs + nf) + jac_operations + outputs + sensitivities + tangent;
    if operations > MAX_OPERATIONS {
        return Err(format!(
            "the model has {operations} operations, more than the {MAX_OPERATIONS} the JIT compiles; it runs in \
             the interpreter (same results)"
        ));
    }
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let consts: HashMap<u32, f64> = p.consts.iter().copied().collect();
    let jac_regs: Vec<u32> = p.jac_entries.iter().map(|e| e.2).collect();
    let mut main = Jit::new("speed")?;
    let mut ctx = main.generator(p, &consts);
    let rhs = ctx.section("rhs", &[&p.rhs], &p.f)?;
    let jac = if has_jac { Some(ctx.section("jac", &[&p.rhs, &p.jac], &jac_regs)?) } else { None };
    // A tangent program's outputs are only read with their tangents, which the interpreter computes from every
    // output register: native output code would go unused.
    let out = if p.out.is_empty() || p.tangent { None } else { Some(ctx.section("out", &[&p.out], &p.out_regs)?) };
    let sens = if p.sensitivities {
        let parts: Vec<u32> =
            p.f.iter().copied().chain(jac_regs.iter().copied()).chain(p.pjac_entries.iter().map(|e| e.2)).collect();
        Some(ctx.section("sens", &[&p.rhs, &p.jac, &p.pjac], &parts)?)
    } else {
        None
    };
    main.module.finalize_definitions().map_err(|x| e(&x))?;
    let mut modules = vec![main];
    // The tangent code gets a module of its own without Cranelift's optimiser: the emitter already folded and
    // shared it, and the optimiser's time grows faster than linearly on it (the regions example's 8·10³
    // tangent instructions: 0.7 s with it, 0.12 s without, running no slower).
    let tangent = if p.tangent {
        let mut jit = Jit::new("none")?;
        let mut ctx = jit.generator(p, &consts);
        let primal: Vec<u32> = p.f.iter().chain(&tan_keep).copied().collect();
        let sections = (ctx.section("tprimal", &[&p.rhs], &primal)?, ctx.section("tangent", &[&p.tan_rhs], &p.tan_f)?);
        jit.module.finalize_definitions().map_err(|x| e(&x))?;
        let sections = (jit.entry(sections.0), jit.entry(sections.1));
        modules.push(jit);
        Some(sections)
    } else {
        None
    };
    let main = &modules[0];
    Ok(Native {
        rhs: main.entry(rhs),
        jac: jac.map(|s| main.entry(s)),
        out: out.map(|s| main.entry(s)),
        sens: sens.map(|s| main.entry(s)),
        tangent,
        tan_keep,
        n_states: p.n_states,
        n_regs: p.n_regs,
        modules: modules.into_iter().map(|j| j.module).collect(),
        tables: p.tables.clone(),
    })
}

/// A projection's month loop as one native function: `f(regs, rows, start, months, state, cells, scratch)`
/// runs months `start..months` from the state in `state` and leaves the state after the last month there. It
/// reads the policy's registers from `regs`, month `t`'s month-only values from row `t` of `rows`, writes month
/// `t`'s cells to row `t` of `cells` (the variant with cells) and uses a row per month of `scratch`, after the
/// calls' caches at its head.
type LoopEntry = unsafe extern "C" fn(*const f64, *const f64, u64, u64, *mut f64, *mut f64, *mut f64);

/// The month loop of [`LANES`] policies at once: `f(regs, rows, months, states, scratch)` runs months
/// `0..months` of each lane `l` from the state at `states[l]` (left there after the last month), reading its
/// registers at `regs[l]`; the month-only rows are shared (the lanes have the same scenario), and `scratch`
/// holds the calls' caches ([`CallCache`]), the sums (`LANES` values per state), the lanes' policy values the loops
/// read and the regions' outputs (`LANES` values each), then a row of every lane's handed values per month.
type LanesEntry = unsafe extern "C" fn(*const *const f64, *const f64, u64, *const *mut f64, *mut f64);

/// What a projection's month code is: the program's right-hand side run once per month, with `f` the cells
/// (the first `width` registers) then each state's next value, `t` in register 0, the state in registers
/// `1..=n_states` and the month-only values in the `n_inputs` registers from `first_input`.
#[derive(Debug, Clone, Copy)]
pub struct MonthCode {
    pub width: usize,
    pub first_input: u32,
    pub n_inputs: usize,
}

/// A projection's month loop in native code (see [`compile_month_loop`]): three functions, one computing only
/// what the state needs (present values and recursions), compiled first, and two compiled when a run first
/// needs them: one storing every month's cells, one running two policies in the lanes of vectors.
pub struct MonthLoop {
    /// The function and the width of its scratch rows.
    state_only: (LoopEntry, usize),
    with_cells: OnceLock<Result<(LoopEntry, usize), String>>,
    /// The function, the width of its scratch rows and the size of the head before them.
    lanes: OnceLock<Result<(LanesEntry, usize, usize), String>>,
    /// What compiles the later functions; its module owns the code memory, released on drop.
    compiler: Mutex<LoopCompiler>,
    /// The head of every scratch: a stamp (this loop's, as bits), then the calls' caches, empty as they start
    /// ([`CallCache`]); copied in when a scratch does not hold this loop's stamp.
    caches: Vec<f64>,
    code: MonthCode,
    n_states: usize,
    n_regs: usize,
}

/// The module of a month loop's functions and what generates them.
struct LoopCompiler {
    jit: Option<Jit>,
    program: Program,
    consts: HashMap<u32, f64>,
    caches: CallCache,
}

impl LoopCompiler {
    /// Define a function with `define`, finalize it and return its address.
    fn add<T>(
        &mut self,
        define: impl FnOnce(&mut Gen<'_>, &Program) -> Result<(FuncId, T), String>,
    ) -> Result<(*const u8, T), String> {
        let LoopCompiler { jit, program, consts, caches } = self;
        let jit = jit.as_mut().ok_or("internal: the month loop's module is gone")?;
        let mut ctx = jit.generator(program, consts);
        ctx.caches = caches.clone();
        let (id, shape) = define(&mut ctx, program)?;
        jit.module.finalize_definitions().map_err(|x| x.to_string())?;
        Ok((jit.module.get_finalized_function(id), shape))
    }
}

// SAFETY: as `Native`'s: the finalized code is read-only, keeps no state and reads nothing mutable; the module
// that compiles more of it is only used under `compiler`'s lock, and code it finalizes later leaves the code
// already finalized as it is.
unsafe impl Send for MonthLoop {}
// SAFETY: as above.
unsafe impl Sync for MonthLoop {}

impl Drop for MonthLoop {
    fn drop(&mut self) {
        let jit = self.compiler.get_mut().map_or_else(|poisoned| poisoned.into_inner().jit.take(), |c| c.jit.take());
        if let Some(j) = jit {
            // SAFETY: the entry points are only reachable through `self`, which is being dropped.
            unsafe { j.module.free_memory() };
        }
    }
}

impl std::fmt::Debug for MonthLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonthLoop").field("code", &self.code).field("n_states", &self.n_states).finish()
    }
}

impl MonthLoop {
    /// Run `months` months: `regs` the policy's register file after its setup code, `rows` the month-only
    /// values (a row of `n_inputs` per month), `state` the start values (the final values after), `cells` a
    /// row of `width` values per month, `scratch` room the loop grows as it needs (kept between runs). An error
    /// if a slice is too short for the code (a caller's bug) or the scratch size is over the limits.
    pub fn run(
        &self,
        regs: &[f64],
        rows: &[f64],
        months: usize,
        state: &mut [f64],
        cells: Option<&mut [f64]>,
        scratch: &mut Vec<f64>,
    ) -> Result<(), String> {
        self.run_from(regs, rows, 0, months, state, cells, scratch)
    }

    /// As [`MonthLoop::run`], from month `start` (`state` the state at `start`): the months `start..months`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_from(
        &self,
        regs: &[f64],
        rows: &[f64],
        start: usize,
        months: usize,
        state: &mut [f64],
        cells: Option<&mut [f64]>,
        scratch: &mut Vec<f64>,
    ) -> Result<(), String> {
        let c = &self.code;
        let short = |what: &str| Err(format!("internal: the month loop's {what} are too short"));
        if regs.len() < self.n_regs || state.len() < self.n_states {
            return short("registers or states");
        }
        if rows.len() < months.saturating_mul(c.n_inputs) {
            return short("month-only rows");
        }
        let ((entry, room), out) = match cells {
            Some(cells) => {
                if cells.len() < months.saturating_mul(c.width) {
                    return short("monthly rows");
                }
                (self.with_cells()?, cells.as_mut_ptr())
            }
            None => (self.state_only, std::ptr::null_mut()),
        };
        let room = months.saturating_mul(room).saturating_add(self.caches.len());
        self.prepare(scratch, room)?;
        // SAFETY: the code reads registers below `n_regs` from `regs`, `n_inputs` values of each of the
        // `months` rows of `rows`, the `n_states` values of `state`, writes `state`, (the first function only)
        // `width` values of each row of `cells` and its scratch rows, `room` values: all checked above. It keeps
        // no pointer after returning and was generated for the host's C calling convention, which `LoopEntry`
        // declares.
        unsafe {
            entry(
                regs.as_ptr(),
                rows.as_ptr(),
                start as u64,
                months as u64,
                state.as_mut_ptr(),
                out,
                scratch.as_mut_ptr(),
            )
        };
        Ok(())
    }

    /// The function storing every month's cells, compiled on first use.
    fn with_cells(&self) -> Result<(LoopEntry, usize), String> {
        self.with_cells
            .get_or_init(|| {
                let code = self.code;
                let (ptr, room) = self.compile(|g, p| g.month_loop("months_cells", &p.rhs, &p.f, code, true))?;
                // SAFETY: `ptr` is the finalized code of a function declared with `LoopEntry`'s signature (two
                // pointers, two 64-bit counts and three pointers, no return) in the host's default calling
                // convention.
                Ok((unsafe { std::mem::transmute::<*const u8, LoopEntry>(ptr) }, room))
            })
            .clone()
    }

    /// The function running two policies in the lanes of vectors, compiled on first use.
    fn lanes(&self) -> Result<(LanesEntry, usize, usize), String> {
        self.lanes
            .get_or_init(|| {
                let code = self.code;
                let (ptr, (room, head)) = self.compile(|g, p| {
                    let (id, room, head) = g.month_loop_lanes("months_state_lanes", &p.rhs, &p.f, code)?;
                    Ok((id, (room, head)))
                })?;
                // SAFETY: `ptr` is the finalized code of a function declared with `LanesEntry`'s signature (two
                // pointers, a 64-bit count and two pointers, no return) in the host's default calling convention.
                Ok((unsafe { std::mem::transmute::<*const u8, LanesEntry>(ptr) }, room, head))
            })
            .clone()
    }

    /// Compile one more function into this loop's module.
    fn compile<T>(
        &self,
        define: impl FnOnce(&mut Gen<'_>, &Program) -> Result<(FuncId, T), String>,
    ) -> Result<(*const u8, T), String> {
        let mut compiler = self.compiler.lock().map_err(|_| "internal: a month loop's compile failed".to_string())?;
        compiler.add(define)
    }

    /// Grow `scratch` to `room` values, its head holding this loop's caches (kept from its last run when the
    /// scratch last served this loop, else empty).
    fn prepare(&self, scratch: &mut Vec<f64>, room: usize) -> Result<(), String> {
        if scratch.len() < room {
            parfit_core::limits::check_allocation("the month loop's scratch rows", room as f64, 8.0)?;
            scratch.resize(room, 0.0);
        }
        if let (Some(stamp), Some(head)) = (self.caches.first(), scratch.get_mut(..self.caches.len()))
            && head[0].to_bits() != stamp.to_bits()
        {
            head.copy_from_slice(&self.caches);
        }
        Ok(())
    }

    /// Run months `0..months` of [`LANES`] policies at once, computing only the state: `regs[l]` lane `l`'s
    /// register file after its setup code, `rows` the month-only values (shared: the lanes have the same
    /// scenario), `states[l]` its start values (the values after month `months - 1` after). Each lane's state
    /// is to the bit what [`MonthLoop::run`] leaves for it. An error as [`MonthLoop::run`]'s.
    pub fn run_lanes(
        &self,
        regs: [&[f64]; LANES],
        rows: &[f64],
        months: usize,
        states: [&mut [f64]; LANES],
        scratch: &mut Vec<f64>,
    ) -> Result<(), String> {
        let short = |what: &str| Err(format!("internal: the month loop's {what} are too short"));
        if regs.iter().any(|r| r.len() < self.n_regs) || states.iter().any(|s| s.len() < self.n_states) {
            return short("registers or states");
        }
        if rows.len() < months.saturating_mul(self.code.n_inputs) {
            return short("month-only rows");
        }
        let (entry, room, head) = self.lanes()?;
        // The head (the lanes' sums and policy values), then a row per month.
        let room = months.saturating_mul(room).saturating_add(head).saturating_add(self.caches.len());
        self.prepare(scratch, room)?;
        let regs = regs.map(<[f64]>::as_ptr);
        let states = states.map(<[f64]>::as_mut_ptr);
        // SAFETY: as `run_from`'s, per lane: the code reads registers below `n_regs` from each `regs[l]`,
        // `n_inputs` values of each of the `months` rows of `rows`, reads and writes the `n_states` values of
        // each `states[l]` (distinct slices: two `&mut`) and `room` values of scratch (the caches, sums, policy
        // values and region outputs, then rows of `handed × LANES`): all checked above. It reads the two arrays of pointers, which live
        // through the call.
        unsafe { entry(regs.as_ptr(), rows.as_ptr(), months as u64, states.as_ptr(), scratch.as_mut_ptr()) };
        Ok(())
    }
}

/// Compile a projection's month loop (`p.rhs` as [`MonthCode`] describes it): the state stays in machine
/// registers across months, the month-only values are read from their rows, and calls (powers, exponentials,
/// table reads by search) whose operands do not depend on the state are made again only when an operand
/// changes (a rate by policy year is computed once per year), each bit for bit the interpreter's.
pub fn compile_month_loop(p: &Program, code: MonthCode) -> Result<MonthLoop, String> {
    let operations = 2 * p.rhs.len() + p.f.len() + code.width;
    if operations > MAX_OPERATIONS {
        return Err(format!(
            "the model has {operations} operations, more than the {MAX_OPERATIONS} the JIT compiles; it runs in \
             the interpreter (same results)"
        ));
    }
    if p.f.len() != code.width + p.n_states {
        return Err("internal: the month code's results are not the cells and the next states".into());
    }
    let consts: HashMap<u32, f64> = p.consts.iter().copied().collect();
    let mut jit = Jit::new("speed")?;
    let caches = CallCache::new(&jit.generator(p, &consts), &p.rhs);
    // The program (and so the tables its code reads by address) lives as long as the code.
    let mut compiler = LoopCompiler { jit: Some(jit), program: p.clone(), consts, caches };
    let caches = compiler.caches.head();
    let (ptr, room) = compiler.add(|g, p| g.month_loop("months_state", &p.rhs, &p.f, code, false))?;
    // SAFETY: `ptr` is the finalized code of a function declared with `LoopEntry`'s signature (two pointers, two
    // 64-bit counts and three pointers, no return) in the host's default calling convention.
    let state_only = (unsafe { std::mem::transmute::<*const u8, LoopEntry>(ptr) }, room);
    Ok(MonthLoop {
        state_only,
        with_cells: OnceLock::new(),
        lanes: OnceLock::new(),
        compiler: Mutex::new(compiler),
        caches,
        code,
        n_states: p.n_states,
        n_regs: p.n_regs,
    })
}

/// A JIT module with the helpers generated code calls declared in it.
struct Jit {
    module: JITModule,
    imports: HashMap<Op, FuncId>,
    table_fn: FuncId,
}

impl Jit {
    /// A module for this host at Cranelift's `opt_level`.
    fn new(opt_level: &str) -> Result<Jit, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let mut flags = settings::builder();
        // The verifier checks Cranelift's own output (≈ 0.5 ms a compile): kept in debug builds and tests.
        let verify = if cfg!(debug_assertions) { "true" } else { "false" };
        for (k, v) in [
            ("opt_level", opt_level),
            ("use_colocated_libcalls", "false"),
            ("is_pic", "false"),
            ("enable_verifier", verify),
        ] {
            flags.set(k, v).map_err(|x| e(&x))?;
        }
        let isa = cranelift_native::builder()?.finish(settings::Flags::new(flags)).map_err(|x| e(&x))?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for &(name, _, f) in CALLS {
            jb.symbol(name, f as *const u8);
        }
        jb.symbol("parfit_table", parfit_table as *const u8);
        let mut module = JITModule::new(jb);
        let mut imports = HashMap::new();
        let mut callee = module.make_signature();
        callee.params.extend([AbiParam::new(types::F64); 2]);
        callee.returns.push(AbiParam::new(types::F64));
        for &(name, op, _) in CALLS {
            imports.insert(op, module.declare_function(name, Linkage::Import, &callee).map_err(|x| e(&x))?);
        }
        let ptr = module.target_config().pointer_type();
        let mut table_sig = module.make_signature();
        table_sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I32)]);
        table_sig.params.extend([AbiParam::new(types::F64); 2]);
        table_sig.returns.push(AbiParam::new(types::F64));
        let table_fn = module.declare_function("parfit_table", Linkage::Import, &table_sig).map_err(|x| e(&x))?;
        Ok(Jit { module, imports, table_fn })
    }

    /// The code generator for `p`'s sections in this module.
    fn generator<'a>(&'a mut self, p: &'a Program, consts: &'a HashMap<u32, f64>) -> Gen<'a> {
        Gen {
            module: &mut self.module,
            imports: &self.imports,
            table_fn: self.table_fn,
            tables: &p.tables,
            consts,
            n_states: p.n_states,
            caches: CallCache::default(),
        }
    }

    /// A section's entry point, after `finalize_definitions`.
    fn entry(&self, (id, n_out): (FuncId, usize)) -> Section {
        let ptr = self.module.get_finalized_function(id);
        // SAFETY: `ptr` is the finalized code of a function declared with `Entry`'s signature (two
        // pointers around an f64 and a pointer, no return) in the host's default calling convention.
        let entry = unsafe { std::mem::transmute::<*const u8, Entry>(ptr) };
        Section { entry, n_out }
    }
}

/// The value of `v` when it is a constant made in the function.
fn constant(b: &FunctionBuilder<'_>, v: Value) -> Option<f64> {
    let inst = b.func.dfg.value_def(v).inst()?;
    match b.func.dfg.insts[inst] {
        InstructionData::UnaryIeee64 { opcode: Opcode::F64const, imm } => Some(f64::from_bits(imm.bits())),
        _ => None,
    }
}

/// For `min(a, x)` / `max(a, x)` with `x` a number: the comparison of `a` with `x` that holds when `x` is taken,
/// that is when `a` is beyond `x` (min), short of it (max), or NaN.
fn unless_reaching(op: Op) -> FloatCC {
    if op == Op::Min { FloatCC::UnorderedOrGreaterThan } else { FloatCC::UnorderedOrLessThan }
}

/// 1.0 where the comparison result `holds`, else 0.0.
fn truth(b: &mut FunctionBuilder<'_>, holds: Value) -> Value {
    let (one, zero) = (b.ins().f64const(1.0), b.ins().f64const(0.0));
    b.ins().select(holds, one, zero)
}

struct Gen<'a> {
    module: &'a mut JITModule,
    imports: &'a HashMap<Op, FuncId>,
    table_fn: FuncId,
    tables: &'a [LookupTable],
    consts: &'a HashMap<u32, f64>,
    n_states: usize,
    /// The month loops' cached calls.
    caches: CallCache,
}

impl<'g> Gen<'g> {
    /// Define one function running `code` (sections in order) and storing the registers `results`.
    fn section(&mut self, name: &str, code: &[&[Instr]], results: &[u32]) -> Result<(FuncId, usize), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::F64), AbiParam::new(ptr), AbiParam::new(ptr)]);
        let id = self.module.declare_function(name, Linkage::Local, &sig).map_err(|x| e(&x))?;
        let mut fctx = self.module.make_context();
        fctx.func.signature = sig;
        let mut fb_ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut fctx.func, &mut fb_ctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let [regs, t, y, out] = b.block_params(block).try_into().map_err(|_| "signature".to_string())?;
        let mem = MemFlags::trusted();
        // Values computed here, by register (each register is written once).
        let mut computed: HashMap<u32, Value> = HashMap::new();
        // Values loaded (or constants made) from outside the section, with the instruction count when made.
        let mut loaded: HashMap<u32, (Value, usize)> = HashMap::new();
        let mut calls = Calls::default();
        let (n_states, consts) = (self.n_states, self.consts);
        // The value of a register: computed here, or loaded (constants embedded). A load is reused only
        // within `RELOAD_AFTER` instructions: reloading is cheap, while one value live across a long
        // section makes register allocation superlinear in the model's size.
        let get = |b: &mut FunctionBuilder<'_>,
                   computed: &HashMap<u32, Value>,
                   loaded: &mut HashMap<u32, (Value, usize)>,
                   r: u32,
                   now: usize|
         -> Value {
            if let Some(&v) = computed.get(&r) {
                return v;
            }
            if let Some(&(v, at)) = loaded.get(&r)
                && now - at < RELOAD_AFTER
            {
                return v;
            }
            let v = match r as usize {
                Program::T => t,
                i if i <= n_states => b.ins().load(types::F64, mem, y, 8 * (i as i32 - 1)),
                _ => match consts.get(&r) {
                    Some(&c) => b.ins().f64const(c),
                    None => b.ins().load(types::F64, mem, regs, 8 * r as i32),
                },
            };
            loaded.insert(r, (v, now));
            v
        };
        // Each result is stored as soon as it is computed, so it need not stay live to the end.
        let mut slots: HashMap<u32, Vec<usize>> = HashMap::new();
        for (k, &r) in results.iter().enumerate() {
            slots.entry(r).or_default().push(k);
        }
        for (now, i) in code.iter().flat_map(|c| c.iter()).enumerate() {
            let n = operand_count(i.op);
            let mut o = [t; 4];
            for (slot, r) in o.iter_mut().zip([i.a, i.b, i.c, i.d]).take(n) {
                *slot = get(&mut b, &computed, &mut loaded, r, now);
            }
            let v = self.lower(&mut b, i, o, &mut calls)?;
            computed.insert(i.dst, v);
            for k in slots.remove(&i.dst).unwrap_or_default() {
                b.ins().store(mem, v, out, 8 * k as i32);
            }
        }
        // Results read from outside the section (the state, parameters, constants).
        let now = code.iter().map(|c| c.len()).sum();
        let mut rest: Vec<(u32, Vec<usize>)> = slots.into_iter().collect();
        rest.sort_unstable();
        for (r, ks) in rest {
            let v = get(&mut b, &computed, &mut loaded, r, now);
            for k in ks {
                b.ins().store(mem, v, out, 8 * k as i32);
            }
        }
        b.ins().return_(&[]);
        b.finalize();
        self.module.define_function(id, &mut fctx).map_err(|x| e(&x))?;
        Ok((id, results.len()))
    }

    /// What a month loop over `code` with results `f` computes where (see [`Plan`]); `cells`: whether it
    /// stores the cells (else only what the next states need is computed).
    fn plan(&self, code: &[Instr], f: &[u32], shape: MonthCode, cells: bool) -> Plan {
        let n_states = self.n_states;
        let width = shape.width;
        // What is needed: the next states (and the cells), and what they read.
        let roots: Vec<u32> = f[if cells { 0 } else { width }..].to_vec();
        let mut needed: HashSet<u32> = roots.iter().copied().collect();
        let mut live = vec![false; code.len()];
        for (k, i) in code.iter().enumerate().rev() {
            if needed.contains(&i.dst) {
                live[k] = true;
                needed.extend(operands(i));
            }
        }
        // What depends on the state (the second loop) and what does not (the first).
        let mut stateful: HashSet<u32> = (1..=n_states as u32).collect();
        for i in code {
            if operands(i).any(|r| stateful.contains(&r)) {
                stateful.insert(i.dst);
            }
        }
        let first: Vec<usize> = (0..code.len()).filter(|&k| live[k] && !stateful.contains(&code[k].dst)).collect();
        let second: Vec<usize> = (0..code.len()).filter(|&k| live[k] && stateful.contains(&code[k].dst)).collect();
        let first_dst: HashSet<u32> = first.iter().map(|&k| code[k].dst).collect();
        let mut handed: Vec<u32> = second
            .iter()
            .flat_map(|&k| operands(&code[k]))
            .chain(f[width..].iter().copied())
            .filter(|r| first_dst.contains(r))
            .collect();
        handed.sort_unstable();
        handed.dedup();
        // What depends on the month only through one whole-number value (a policy year) is computed again only
        // when that value changes: a block whose results (those read outside it) are carried from month to month.
        let inputs = shape.first_input..shape.first_input + shape.n_inputs as u32;
        let mut regions = regions(code, &first, |r| r as usize == Program::T || inputs.contains(&r));
        let mut read_outside: HashSet<u32> = handed.iter().copied().collect();
        if cells {
            read_outside.extend(f[..width].iter().copied());
        }
        let member: HashMap<usize, usize> =
            regions.iter().enumerate().flat_map(|(n, g)| g.members.iter().map(move |&k| (k, n))).collect();
        for &k in &first {
            if !member.contains_key(&k) {
                read_outside.extend(operands(&code[k]));
            }
        }
        for g in &mut regions {
            g.outputs = g.members.iter().map(|&k| code[k].dst).filter(|r| read_outside.contains(r)).collect();
        }
        let key_of: HashMap<u32, usize> = regions.iter().enumerate().map(|(n, g)| (g.key, n)).collect();
        let remembered: Vec<usize> =
            first.iter().copied().filter(|&k| self.is_call(&code[k]) && !member.contains_key(&k)).collect();
        // The policy's values the loops read: loaded once before them (so what depends only on them is computed
        // once too), unless there are so many that keeping them live would cost more.
        let consts = self.consts;
        let computed_here: HashSet<u32> = code.iter().map(|i| i.dst).collect();
        let mut outside: Vec<u32> = first
            .iter()
            .chain(&second)
            .flat_map(|&k| operands(&code[k]))
            .chain(roots.iter().copied())
            .filter(|&r| {
                r as usize != Program::T
                    && !(1..=n_states as u32).contains(&r)
                    && !inputs.contains(&r)
                    && !consts.contains_key(&r)
                    && !computed_here.contains(&r)
            })
            .collect();
        outside.sort_unstable();
        outside.dedup();
        if outside.len() > MAX_PRELOADED {
            outside.clear();
        }
        // A sum (a present value: a state whose value only its own next value reads, and whose next value
        // nothing else reads) stays in memory, added to in place: off the recursions' chains, it would only take
        // registers they need (and push them onto the stack).
        let mut reads: HashMap<u32, usize> = HashMap::new();
        for r in second.iter().flat_map(|&k| operands(&code[k])).chain(f.iter().copied()) {
            *reads.entry(r).or_default() += 1;
        }
        let in_memory: Vec<bool> = (0..n_states)
            .map(|k| {
                let (s, next) = ((k + 1) as u32, f[width + k]);
                reads.get(&next) == Some(&1)
                    && reads.get(&s).copied().unwrap_or(0) <= 1
                    && second.iter().any(|&j| code[j].dst == next && operands(&code[j]).any(|r| r == s))
            })
            .collect();
        Plan { first, second, handed, regions, member, key_of, remembered, stateful, outside, in_memory, inputs }
    }

    /// Define a month loop (see [`LoopEntry`]) over `code` with results `f` ([`MonthCode`]); `cells`: whether
    /// it stores the cells (else only what the next states need is computed).
    ///
    /// The function runs two loops over the months. The first computes what does not depend on the state
    /// (functions of `t`, the month-only values and the policy: rates, table reads, their calls, remembered)
    /// and hands what the second reads to it through `scratch`, a row per month; the second carries the
    /// recursions in machine registers (the sums in memory), with no call in it unless a call depends on the state.
    fn month_loop(
        &mut self,
        name: &str,
        code: &[Instr],
        f: &[u32],
        shape: MonthCode,
        cells: bool,
    ) -> Result<(FuncId, usize), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let n_states = self.n_states;
        let width = shape.width;
        let plan = self.plan(code, f, shape, cells);
        let Plan { second, handed, stateful, in_memory, .. } = &plan;
        let slots: HashMap<u32, i32> = handed.iter().enumerate().map(|(k, &r)| (r, 8 * k as i32)).collect();
        // A cell is stored by the second loop when it is the state or depends on it, else by the first.
        let stored_late = |r: u32| stateful.contains(&r);

        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(types::I64)]);
        sig.params.extend([AbiParam::new(types::I64), AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(ptr)]);
        let id = self.module.declare_function(name, Linkage::Local, &sig).map_err(|x| e(&x))?;
        let mut fctx = self.module.make_context();
        fctx.func.signature = sig;
        let mut fb_ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut fctx.func, &mut fb_ctx);
        let mem = MemFlags::trusted();

        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let [regs, rows, start, months, state, out, scratch] =
            b.block_params(entry).try_into().map_err(|_| "signature".to_string())?;
        // The caches at the head of scratch (after the stamp), then the rows.
        let caches = b.ins().iadd_imm(scratch, 8);
        let scratch = b.ins().iadd_imm(scratch, 8 * self.caches.words as i64);
        let invariant: HashMap<u32, Value> =
            plan.outside.iter().map(|&r| (r, b.ins().load(types::F64, mem, regs, 8 * r as i32))).collect();
        let mut calls = Calls::default();
        let at = Pointers { regs, rows, out: cells.then_some(out), scratch, caches };
        let env = self.first_loop(&mut b, &plan, code, f, shape, at, (start, months), &invariant, &mut calls)?;
        let end = code.len();

        // The second loop: the month number and the state, a sum in `state`.
        let header = b.create_block();
        let month = b.append_block_param(header, types::I64);
        let mut args: Vec<BlockArg> = vec![start.into()];
        let mut carried_state = vec![];
        for k in (0..n_states).filter(|&k| !in_memory[k]) {
            args.push(b.ins().load(types::F64, mem, state, 8 * k as i32).into());
            carried_state.push((k, b.append_block_param(header, types::F64)));
        }
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let (body, exit) = (b.create_block(), b.create_block());
        let more = b.ins().icmp(IntCC::UnsignedLessThan, month, months);
        b.ins().brif(more, body, &[], exit, &[]);
        b.switch_to_block(body);
        b.seal_block(body);
        // A sum kept in memory is loaded where it is read (loaded at the top, it would be live through the month).
        let state_vals: Vec<Option<Value>> =
            (0..n_states).map(|k| carried_state.iter().find(|(j, _)| *j == k).map(|&(_, v)| v)).collect();
        let env = Env {
            sums: Some(state),
            t: b.ins().fcvt_from_sint(types::F64, month),
            row: row_of(&mut b, ptr, rows, month, shape.n_inputs),
            state: &state_vals,
            handed: if handed.is_empty() {
                None
            } else {
                Some((row_of(&mut b, ptr, scratch, month, handed.len()), &slots))
            },
            ..env
        };
        let mut computed: HashMap<u32, Value> = HashMap::new();
        let mut loaded: HashMap<u32, (Value, usize)> = HashMap::new();
        // A sum is stored as soon as its next value is made: Cranelift keeps loads and stores in program order
        // and places arithmetic just before its first use by one, so sums all stored at the end would have
        // every sum's load at the top of the month and its value live (spilled) through the month.
        let sum_of: HashMap<u32, usize> = (0..n_states).filter(|&k| in_memory[k]).map(|k| (f[width + k], k)).collect();
        for &now in second {
            let i = &code[now];
            let mut o = [env.t; 4];
            for (slot, r) in o.iter_mut().zip(operands(i)) {
                *slot = env.get(&mut b, &computed, &mut loaded, r, now);
            }
            let v = self.lower(&mut b, i, o, &mut calls)?;
            computed.insert(i.dst, v);
            if let Some(&k) = sum_of.get(&i.dst) {
                b.ins().store(mem, v, state, 8 * k as i32);
            }
        }
        if cells {
            let row = row_of(&mut b, ptr, out, month, width);
            for (k, &r) in f[..width].iter().enumerate() {
                if stored_late(r) {
                    let v = env.get(&mut b, &computed, &mut loaded, r, end);
                    b.ins().store(mem, v, row, 8 * k as i32);
                }
            }
        }
        let mut args: Vec<BlockArg> = vec![b.ins().iadd_imm(month, 1).into()];
        // (A sum's next value is made in this loop, and stored where it was made.)
        for (_, &r) in f[width..].iter().enumerate().filter(|&(k, _)| !in_memory[k]) {
            args.push(env.get(&mut b, &computed, &mut loaded, r, end).into());
        }
        b.ins().jump(header, &args);
        b.seal_block(header);

        b.switch_to_block(exit);
        b.seal_block(exit);
        for &(k, v) in &carried_state {
            b.ins().store(mem, v, state, 8 * k as i32);
        }
        b.ins().return_(&[]);
        b.finalize();
        self.module.define_function(id, &mut fctx).map_err(|x| e(&x))?;
        Ok((id, handed.len()))
    }

    /// Emit the first loop of a month loop ([`Gen::month_loop`]) for months `start..months`: it stores the cells
    /// that do not depend on the state (when `at.out` is given) and each handed value `k` of month `t` at
    /// `scratch[t × handed + k]`. Leaves the builder after the loop and returns the loop's environment (without
    /// the month's values) for the second loop.
    #[allow(clippy::too_many_arguments)]
    fn first_loop<'e>(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        plan: &'e Plan,
        code: &[Instr],
        f: &[u32],
        shape: MonthCode,
        at: Pointers,
        (start, months): (Value, Value),
        invariant: &'e HashMap<u32, Value>,
        calls: &mut Calls,
    ) -> Result<Env<'e>, String>
    where
        'g: 'e,
    {
        let Plan { first, handed, regions, member, key_of, remembered, stateful, inputs, .. } = plan;
        let mem = MemFlags::trusted();
        let ptr = self.module.target_config().pointer_type();
        let width = shape.width;
        // The month number and each remembered call's last operands (as bits) and value.
        let header = b.create_block();
        let month = b.append_block_param(header, types::I64);
        let mut args: Vec<BlockArg> = vec![start.into()];
        let mut memo: Vec<[Value; 3]> = vec![];
        for &k in remembered {
            // Start with the call's value at operands 0: a pair it really makes.
            let i = &code[k];
            let value = value_at_zero(self.tables, i);
            let zero = b.ins().iconst(types::I64, 0);
            args.extend([zero, zero, b.ins().f64const(value)].map(BlockArg::from));
            let (x, y) = (b.append_block_param(header, types::I64), b.append_block_param(header, types::I64));
            memo.push([x, y, b.append_block_param(header, types::F64)]);
        }
        let mut carried: Vec<(Value, Vec<Value>)> = vec![];
        for g in regions {
            // The first month computes the region whatever these are.
            args.push(b.ins().iconst(types::I64, 0).into());
            let key = b.append_block_param(header, types::I64);
            let mut values = vec![];
            for _ in &g.outputs {
                args.push(b.ins().f64const(0.0).into());
                values.push(b.append_block_param(header, types::F64));
            }
            carried.push((key, values));
        }
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let (body, done) = (b.create_block(), b.create_block());
        let more = b.ins().icmp(IntCC::UnsignedLessThan, month, months);
        b.ins().brif(more, body, &[], done, &[]);
        b.switch_to_block(body);
        b.seal_block(body);
        let env = Env {
            t: b.ins().fcvt_from_sint(types::F64, month),
            row: row_of(b, ptr, at.rows, month, shape.n_inputs),
            inputs: inputs.clone(),
            state: &[],
            sums: None,
            invariant,
            consts: self.consts,
            regs: at.regs,
            handed: None,
        };
        let mut computed: HashMap<u32, Value> = HashMap::new();
        let mut loaded: HashMap<u32, (Value, usize)> = HashMap::new();
        let mut next_memo: Vec<BlockArg> = vec![];
        let mut memo_of = remembered.iter().zip(&memo).peekable();
        let mut next_carried: Vec<BlockArg> = vec![];
        for &now in first {
            if member.contains_key(&now) {
                continue;
            }
            let i = &code[now];
            let n = operand_count(i.op);
            let mut o = [env.t; 4];
            for (slot, r) in o.iter_mut().zip(operands(i)) {
                *slot = env.get(b, &computed, &mut loaded, r, now);
            }
            let v = match memo_of.next_if(|(k, _)| **k == now) {
                Some((_, &[last_a, last_b, last_v])) => {
                    // The call again only when an operand it reads changed (compared as bits: -0 is not 0).
                    let a = b.ins().bitcast(types::I64, MemFlags::new(), o[0]);
                    let x = if n == 2 { b.ins().bitcast(types::I64, MemFlags::new(), o[1]) } else { last_b };
                    let v = unless_same(b, [a, x], [last_a, last_b], last_v, |b| {
                        self.lower_cached(b, (now, i), o, calls, at.caches)
                    })?;
                    next_memo.extend([a, x, v].map(BlockArg::from));
                    v
                }
                None => self.lower(b, i, o, calls)?,
            };
            computed.insert(i.dst, v);
            let Some(&n) = key_of.get(&i.dst) else { continue };
            // The region of this value: again when its bits changed, or in the first month.
            let (g, (last_key, last_values)) = (&regions[n], &carried[n]);
            let key = b.ins().bitcast(types::I64, MemFlags::new(), v);
            let same_key = b.ins().icmp(IntCC::Equal, key, *last_key);
            let later = b.ins().icmp(IntCC::NotEqual, month, start);
            let same = b.ins().band(same_key, later);
            let (again, join) = (b.create_block(), b.create_block());
            let values: Vec<Value> = g.outputs.iter().map(|_| b.append_block_param(join, types::F64)).collect();
            let last: Vec<BlockArg> = last_values.iter().map(|&v| v.into()).collect();
            b.ins().brif(same, join, &last, again, &[]);
            b.switch_to_block(again);
            b.seal_block(again);
            // Values made in the block are not available after it: its own maps.
            let (mut inside, mut inside_loaded) = (computed.clone(), loaded.clone());
            for &k in &g.members {
                let i = &code[k];
                let mut o = [env.t; 4];
                for (slot, r) in o.iter_mut().zip(operands(i)) {
                    *slot = env.get(b, &inside, &mut inside_loaded, r, k);
                }
                let v = self.lower_cached(b, (k, i), o, calls, at.caches)?;
                inside.insert(i.dst, v);
            }
            let results: Vec<BlockArg> = g.outputs.iter().map(|r| inside[r].into()).collect();
            b.ins().jump(join, &results);
            b.switch_to_block(join);
            b.seal_block(join);
            for (&r, &v) in g.outputs.iter().zip(&values) {
                computed.insert(r, v);
            }
            next_carried.push(key.into());
            next_carried.extend(values.iter().map(|&v| BlockArg::from(v)));
        }
        let end = code.len();
        if let Some(out) = at.out {
            let row = row_of(b, ptr, out, month, width);
            for (k, &r) in f[..width].iter().enumerate() {
                if !stateful.contains(&r) {
                    let v = env.get(b, &computed, &mut loaded, r, end);
                    b.ins().store(mem, v, row, 8 * k as i32);
                }
            }
        }
        if !handed.is_empty() {
            let row = row_of(b, ptr, at.scratch, month, handed.len());
            for (k, &r) in handed.iter().enumerate() {
                let v = env.get(b, &computed, &mut loaded, r, end);
                b.ins().store(mem, v, row, 8 * k as i32);
            }
        }
        let mut args: Vec<BlockArg> = vec![b.ins().iadd_imm(month, 1).into()];
        args.extend(next_memo);
        args.extend(next_carried);
        b.ins().jump(header, &args);
        b.seal_block(header);
        b.switch_to_block(done);
        b.seal_block(done);
        Ok(env)
    }

    /// Define the month loop of [`LANES`] policies at once (see [`LanesEntry`]), computing only what the state
    /// needs, both loops on vectors of the lanes' values: the first ([`Gen::first_loop_lanes`]) hands a vector
    /// per value and month to the second through `scratch` (value `k` of lane `l` at `k × LANES + l`); the second
    /// carries every lane's state in one vector register per state (a sum in `scratch`'s head). IEEE operations
    /// on a lane round as the scalar ones, comparisons become lane masks and choices bit selections with the
    /// scalar lowering's treatment of NaN, and what has no vector form (a call, a table read, a truncation) is
    /// made per lane by the scalar lowering: each lane gets the bits its own run would.
    fn month_loop_lanes(
        &mut self,
        name: &str,
        code: &[Instr],
        f: &[u32],
        shape: MonthCode,
    ) -> Result<(FuncId, usize, usize), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let n_states = self.n_states;
        let width = shape.width;
        let plan = self.plan(code, f, shape, false);
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(types::I64)]);
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr)]);
        let id = self.module.declare_function(name, Linkage::Local, &sig).map_err(|x| e(&x))?;
        let mut fctx = self.module.make_context();
        fctx.func.signature = sig;
        let mut fb_ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut fctx.func, &mut fb_ctx);
        let mem = MemFlags::trusted();

        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let [regs_at, rows, months, state_at, scratch] =
            b.block_params(entry).try_into().map_err(|_| "signature".to_string())?;
        let lane_ptrs = |b: &mut FunctionBuilder<'_>, at: Value| -> Vec<Value> {
            (0..LANES).map(|l| b.ins().load(ptr, mem, at, (l * ptr.bytes() as usize) as i32)).collect()
        };
        let regs = lane_ptrs(&mut b, regs_at);
        let states = lane_ptrs(&mut b, state_at);
        let zero = b.ins().iconst(types::I64, 0);
        // The caches at the head of scratch (after the stamp), then the sums (a vector each), then the policy
        // values the loops read, interleaved here once (a vector each: gathered where used, they would be put
        // together again every month), then the handed rows.
        let caches = b.ins().iadd_imm(scratch, 8);
        let sums = b.ins().iadd_imm(scratch, 8 * self.caches.words as i64);
        let policy = b.ins().iadd_imm(sums, (VECTOR_BYTES * n_states) as i64);
        let mut invariant: HashMap<u32, i32> = HashMap::new();
        for (k, &r) in plan.outside.iter().enumerate() {
            let at = (VECTOR_BYTES * k) as i32;
            for (l, &g) in regs.iter().enumerate() {
                let x = b.ins().load(types::F64, mem, g, 8 * r as i32);
                b.ins().store(mem, x, policy, at + 8 * l as i32);
            }
            invariant.insert(r, at);
        }
        // After them, the regions' outputs: each lane's stored where its region is computed and read as a vector
        // (carried from month to month in registers, the lanes' values would be put together every month).
        let mut held = invariant.clone();
        for (k, &r) in plan.regions.iter().flat_map(|g| &g.outputs).enumerate() {
            held.insert(r, (VECTOR_BYTES * (plan.outside.len() + k)) as i32);
        }
        let head = LANES * (n_states + held.len());
        let scratch = b.ins().iadd_imm(sums, (8 * head) as i64);
        let mut calls = Calls::default();
        let lanes = Lanes { rows, scratch, months, regs: &regs, policy, invariant: &held, caches };
        self.first_loop_lanes(&mut b, &plan, code, shape, lanes, &mut calls)?;

        // The second loop, on vectors: the month number and the states not in memory (the sums in `sums`).
        let Plan { second, handed, in_memory, .. } = &plan;
        let vmem = MemFlags::new().with_notrap();
        let header = b.create_block();
        let month = b.append_block_param(header, types::I64);
        let mut args: Vec<BlockArg> = vec![zero.into()];
        let mut carried = vec![];
        for (k, &in_memory) in in_memory.iter().enumerate() {
            let lanes: Vec<Value> = states.iter().map(|&s| b.ins().load(types::F64, mem, s, 8 * k as i32)).collect();
            let v = gather(&mut b, &lanes);
            if in_memory {
                b.ins().store(vmem, v, sums, (VECTOR_BYTES * k) as i32);
            } else {
                args.push(v.into());
                carried.push((k, b.append_block_param(header, VECTOR)));
            }
        }
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let (body, exit) = (b.create_block(), b.create_block());
        let more = b.ins().icmp(IntCC::UnsignedLessThan, month, months);
        b.ins().brif(more, body, &[], exit, &[]);
        b.switch_to_block(body);
        b.seal_block(body);
        let t = b.ins().fcvt_from_sint(types::F64, month);
        let state: Vec<Option<Value>> =
            (0..n_states).map(|k| carried.iter().find(|(j, _)| *j == k).map(|&(_, v)| v)).collect();
        let env = LaneEnv {
            t: b.ins().splat(VECTOR, t),
            row: row_of(&mut b, ptr, rows, month, shape.n_inputs),
            inputs: plan.inputs.clone(),
            state: &state,
            sums,
            policy,
            invariant: &invariant,
            consts: self.consts,
            regs: &regs,
            handed: row_of(&mut b, ptr, scratch, month, handed.len() * LANES),
            slots: handed.iter().enumerate().map(|(k, &r)| (r, (VECTOR_BYTES * k) as i32)).collect(),
        };
        let mut computed: HashMap<u32, Value> = HashMap::new();
        let mut loaded: HashMap<u32, (Value, usize)> = HashMap::new();
        let mut masks: HashMap<Value, Value> = HashMap::new();
        // A sum is stored where its next value is made, as in the scalar loop.
        let sum_of: HashMap<u32, usize> = (0..n_states).filter(|&k| in_memory[k]).map(|k| (f[width + k], k)).collect();
        for &now in second {
            let i = &code[now];
            let mut o = [env.t; 4];
            for (slot, r) in o.iter_mut().zip(operands(i)) {
                *slot = env.get(&mut b, &computed, &mut loaded, r, now);
            }
            let v = self.lower_lanes(&mut b, i, o, &mut masks, &mut calls)?;
            computed.insert(i.dst, v);
            if let Some(&k) = sum_of.get(&i.dst) {
                b.ins().store(vmem, v, sums, (VECTOR_BYTES * k) as i32);
            }
        }
        let end = code.len();
        let mut args: Vec<BlockArg> = vec![b.ins().iadd_imm(month, 1).into()];
        for (_, &r) in f[width..].iter().enumerate().filter(|&(k, _)| !in_memory[k]) {
            args.push(env.get(&mut b, &computed, &mut loaded, r, end).into());
        }
        b.ins().jump(header, &args);
        b.seal_block(header);

        b.switch_to_block(exit);
        b.seal_block(exit);
        for (k, &carried) in state.iter().enumerate() {
            let v = match carried {
                Some(v) => v,
                None => b.ins().load(VECTOR, vmem, sums, (VECTOR_BYTES * k) as i32),
            };
            for (l, &s) in states.iter().enumerate() {
                let x = b.ins().extractlane(v, l as u8);
                b.ins().store(mem, x, s, 8 * k as i32);
            }
        }
        b.ins().return_(&[]);
        b.finalize();
        self.module.define_function(id, &mut fctx).map_err(|x| e(&x))?;
        Ok((id, handed.len() * LANES, head))
    }

    /// The first loop of the lanes month loop, on vectors: what has a vector form is computed for both lanes
    /// at once; a remembered call and a region are per lane (each lane's operands or key compared with its own
    /// last ones, the call or the region's scalar code run for that lane only), a call's values gathered into
    /// a vector, a region's stored in its lane of the vectors `at.invariant` places. Stores each handed value `k` of month `t` as the vector at `scratch[(t × handed + k) × LANES]`.
    #[allow(clippy::too_many_arguments)]
    fn first_loop_lanes(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        plan: &Plan,
        code: &[Instr],
        shape: MonthCode,
        at: Lanes<'_>,
        calls: &mut Calls,
    ) -> Result<(), String> {
        let Plan { first, handed, regions, member, key_of, remembered, inputs, .. } = plan;
        let Lanes { rows, scratch, months, regs, policy, invariant, caches } = at;
        let ptr = self.module.target_config().pointer_type();
        let header = b.create_block();
        let month = b.append_block_param(header, types::I64);
        let mut args: Vec<BlockArg> = vec![b.ins().iconst(types::I64, 0).into()];
        // Per remembered call, per lane: its last operands' bits and value.
        let mut memo: Vec<Vec<[Value; 3]>> = vec![];
        for &k in remembered {
            let i = &code[k];
            let value = value_at_zero(self.tables, i);
            let mut lanes = vec![];
            for _ in 0..LANES {
                let zero = b.ins().iconst(types::I64, 0);
                args.extend([zero, zero, b.ins().f64const(value)].map(BlockArg::from));
                let (x, y) = (b.append_block_param(header, types::I64), b.append_block_param(header, types::I64));
                lanes.push([x, y, b.append_block_param(header, types::F64)]);
            }
            memo.push(lanes);
        }
        // Per region: its last key's bits in each lane (its outputs are in memory), at first `NO_KEY`'s, so each
        // lane computes its region in month 0.
        let mut carried: Vec<Value> = vec![];
        for _ in regions {
            let none = b.ins().iconst(types::I64, NO_KEY as i64);
            args.push(b.ins().splat(MASK, none).into());
            carried.push(b.append_block_param(header, MASK));
        }
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let (body, done) = (b.create_block(), b.create_block());
        let more = b.ins().icmp(IntCC::UnsignedLessThan, month, months);
        b.ins().brif(more, body, &[], done, &[]);
        b.switch_to_block(body);
        b.seal_block(body);
        let t = b.ins().fcvt_from_sint(types::F64, month);
        let env = LaneEnv {
            t: b.ins().splat(VECTOR, t),
            row: row_of(b, ptr, rows, month, shape.n_inputs),
            inputs: inputs.clone(),
            state: &[],
            sums: scratch,
            policy,
            invariant,
            consts: self.consts,
            regs,
            handed: scratch,
            slots: HashMap::new(),
        };
        // A lane's scalar value of `r`: made in the lane's region code, `t`, the lane's policy value or region
        // output (read from memory: a region or a remembered call's operands are rarely new), else the lane of
        // the vector.
        let lane_get = |b: &mut FunctionBuilder<'_>,
                        l: usize,
                        r: u32,
                        inside: &HashMap<u32, Value>,
                        computed: &HashMap<u32, Value>,
                        loaded: &mut HashMap<u32, (Value, usize)>,
                        now: usize| {
            if let Some(&v) = inside.get(&r) {
                return v;
            }
            if r as usize == Program::T {
                return t;
            }
            if let Some(&at) = invariant.get(&r) {
                return b.ins().load(types::F64, MemFlags::trusted(), policy, at + 8 * l as i32);
            }
            let v = env.get(b, computed, loaded, r, now);
            b.ins().extractlane(v, l as u8)
        };
        let mut computed: HashMap<u32, Value> = HashMap::new();
        let mut loaded: HashMap<u32, (Value, usize)> = HashMap::new();
        let mut masks: HashMap<Value, Value> = HashMap::new();
        let mut next: Vec<BlockArg> = vec![];
        let mut next_carried: Vec<BlockArg> = vec![];
        let mut memo_of = remembered.iter().zip(&memo).peekable();
        let no_inside = HashMap::new();
        for &now in first {
            if member.contains_key(&now) {
                continue;
            }
            let i = &code[now];
            let n = operand_count(i.op);
            let v = match memo_of.next_if(|(k, _)| **k == now) {
                Some((_, lanes)) => {
                    let mut values = vec![];
                    for (l, &[last_a, last_b, last_v]) in lanes.iter().enumerate() {
                        let mut o = [t; 4];
                        for (slot, r) in o.iter_mut().zip(operands(i)) {
                            *slot = lane_get(b, l, r, &no_inside, &computed, &mut loaded, now);
                        }
                        let a = b.ins().bitcast(types::I64, MemFlags::new(), o[0]);
                        let x = if n == 2 { b.ins().bitcast(types::I64, MemFlags::new(), o[1]) } else { last_b };
                        let v = unless_same(b, [a, x], [last_a, last_b], last_v, |b| {
                            self.lower_cached(b, (now, i), o, calls, caches)
                        })?;
                        next.extend([a, x, v].map(BlockArg::from));
                        values.push(v);
                    }
                    gather(b, &values)
                }
                None => {
                    let mut o = [env.t; 4];
                    for (slot, r) in o.iter_mut().zip(operands(i)) {
                        *slot = env.get(b, &computed, &mut loaded, r, now);
                    }
                    self.lower_lanes(b, i, o, &mut masks, calls)?
                }
            };
            computed.insert(i.dst, v);
            let Some(&g) = key_of.get(&i.dst) else { continue };
            // The region of this value, per lane: again when the lane's key bits changed. Most months no key
            // changed: one comparison of the vectors' bits passes over every lane.
            let region = &regions[g];
            let key = b.ins().bitcast(MASK, lane_order(), v);
            let same_keys = b.ins().icmp(IntCC::Equal, key, carried[g]);
            let same_lanes = b.ins().vhigh_bits(types::I32, same_keys);
            let unchanged = b.ins().icmp_imm(IntCC::Equal, same_lanes, (1 << LANES) - 1);
            let (some_lane, after) = (b.create_block(), b.create_block());
            b.ins().brif(unchanged, after, &[], some_lane, &[]);
            b.switch_to_block(some_lane);
            b.seal_block(some_lane);
            for l in 0..LANES {
                let same_key = b.ins().extractlane(same_keys, l as u8);
                let same = b.ins().icmp_imm(IntCC::NotEqual, same_key, 0);
                let (again, join) = (b.create_block(), b.create_block());
                b.ins().brif(same, join, &[], again, &[]);
                b.switch_to_block(again);
                b.seal_block(again);
                // Values made in the block are not available after it: its own maps.
                let (mut inside, mut inside_loaded) = (HashMap::new(), loaded.clone());
                for &k in &region.members {
                    let i = &code[k];
                    let mut o = [t; 4];
                    for (slot, r) in o.iter_mut().zip(operands(i)) {
                        *slot = lane_get(b, l, r, &inside, &computed, &mut inside_loaded, k);
                    }
                    let v = self.lower_cached(b, (k, i), o, calls, caches)?;
                    inside.insert(i.dst, v);
                }
                for r in &region.outputs {
                    let at = invariant.get(r).ok_or("internal: a region output has no place")?;
                    b.ins().store(MemFlags::trusted(), inside[r], policy, at + 8 * l as i32);
                }
                b.ins().jump(join, &[]);
                b.switch_to_block(join);
                b.seal_block(join);
            }
            b.ins().jump(after, &[]);
            b.switch_to_block(after);
            b.seal_block(after);
            next_carried.push(key.into());
        }
        let end = code.len();
        if !handed.is_empty() {
            let row = row_of(b, ptr, scratch, month, handed.len() * LANES);
            for (k, &r) in handed.iter().enumerate() {
                let v = env.get(b, &computed, &mut loaded, r, end);
                b.ins().store(MemFlags::new().with_notrap(), v, row, (VECTOR_BYTES * k) as i32);
            }
        }
        let mut args: Vec<BlockArg> = vec![b.ins().iadd_imm(month, 1).into()];
        args.extend(next);
        args.extend(next_carried);
        b.ins().jump(header, &args);
        b.seal_block(header);
        b.switch_to_block(done);
        b.seal_block(done);
        Ok(())
    }

    /// Lower `i` on vectors of [`LANES`] values (`o` its operands, unused past its operand count): `masks` the
    /// lane mask behind each truth vector (1.0 or 0.0 per lane) made, as [`Calls::truth`] for scalars.
    fn lower_lanes(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        i: &Instr,
        o: [Value; 4],
        masks: &mut HashMap<Value, Value>,
        calls: &mut Calls,
    ) -> Result<Value, String> {
        let [a, x, c, d] = o;
        let splat = |b: &mut FunctionBuilder<'_>, v: f64| {
            let s = b.ins().f64const(v);
            b.ins().splat(VECTOR, s)
        };
        // Whether a lane counts as true: `v != 0` (true for NaN).
        let holds = |b: &mut FunctionBuilder<'_>, masks: &HashMap<Value, Value>, v: Value| match masks.get(&v) {
            Some(&m) => m,
            None => {
                let z = splat(b, 0.0);
                b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
        };
        let truth = |b: &mut FunctionBuilder<'_>, masks: &mut HashMap<Value, Value>, m: Value| {
            let one = b.ins().iconst(types::I64, 1.0f64.to_bits() as i64);
            let one = b.ins().splat(MASK, one);
            let bits = b.ins().band(m, one);
            let v = b.ins().bitcast(VECTOR, lane_order(), bits);
            masks.insert(v, m);
            v
        };
        Ok(match i.op {
            Op::Add => b.ins().fadd(a, x),
            Op::Sub => b.ins().fsub(a, x),
            Op::Mul => b.ins().fmul(a, x),
            Op::Div => b.ins().fdiv(a, x),
            Op::Neg => b.ins().fneg(a),
            Op::Sqrt => b.ins().sqrt(a),
            Op::Abs => b.ins().fabs(a),
            Op::Heaviside | Op::Select => {
                let (yes, no) = if i.op == Op::Select { (x, c) } else { (splat(b, 1.0), splat(b, 0.0)) };
                let z = splat(b, 0.0);
                // `a >= 0` is false for NaN, as in Rust.
                let ge = b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, z);
                choose(b, ge, yes, no)
            }
            Op::Min | Op::Max => {
                // As the interpreter: `x` when it is beyond `a` or `a` is NaN, else `a`.
                if self.is_number(i.b) {
                    let take = b.ins().fcmp(unless_reaching(i.op), a, x);
                    choose(b, take, x, a)
                } else {
                    // `x` where beyond `a`, else `a`, in the form x86 makes one `minpd`/`maxpd` of; then `x`
                    // where `a` is NaN.
                    let (low, high) = if i.op == Op::Min { (x, a) } else { (a, x) };
                    let beyond = b.ins().fcmp(FloatCC::LessThan, low, high);
                    let beyond = b.ins().bitcast(VECTOR, lane_order(), beyond);
                    let v = b.ins().bitselect(beyond, x, a);
                    if self.is_number(i.a) {
                        v
                    } else {
                        let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
                        choose(b, nan, x, v)
                    }
                }
            }
            Op::Trunc if self.has_vector_trunc() => b.ins().trunc(a),
            Op::Floor if self.has_vector_trunc() => b.ins().floor(a),
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let cc = match i.op {
                    Op::Eq => FloatCC::Equal,
                    Op::Ne => FloatCC::NotEqual,
                    Op::Lt => FloatCC::LessThan,
                    Op::Le => FloatCC::LessThanOrEqual,
                    Op::Gt => FloatCC::GreaterThan,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                let m = b.ins().fcmp(cc, a, x);
                truth(b, masks, m)
            }
            Op::And | Op::Or | Op::Not => {
                let p = holds(b, masks, a);
                let m = match i.op {
                    Op::Not => b.ins().bnot(p),
                    Op::And => {
                        let q = holds(b, masks, x);
                        b.ins().band(p, q)
                    }
                    _ => {
                        let q = holds(b, masks, x);
                        b.ins().bor(p, q)
                    }
                };
                truth(b, masks, m)
            }
            Op::If => {
                let m = holds(b, masks, a);
                choose(b, m, x, c)
            }
            Op::NanElse => {
                let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
                choose(b, nan, x, a)
            }
            // Two roundings, as the interpreter: no fused multiply-add.
            Op::MulAdd => {
                let m = b.ins().fmul(a, x);
                b.ins().fadd(m, c)
            }
            Op::MulSub => {
                let m = b.ins().fmul(a, x);
                b.ins().fsub(m, c)
            }
            Op::NegMulAdd => {
                let m = b.ins().fmul(a, x);
                b.ins().fsub(c, m)
            }
            Op::MulMulAdd | Op::MulMulSub => {
                let m = b.ins().fmul(a, x);
                let n = b.ins().fmul(c, d);
                if i.op == Op::MulMulAdd { b.ins().fadd(m, n) } else { b.ins().fsub(m, n) }
            }
            // Per lane, as the scalar code: calls, table reads, truncation, copysign.
            _ => {
                let n = operand_count(i.op);
                let mut lanes = vec![];
                for l in 0..LANES {
                    let first = b.ins().extractlane(a, l as u8);
                    let mut s = [first; 4];
                    for (slot, &v) in s.iter_mut().zip(&o).take(n).skip(1) {
                        *slot = b.ins().extractlane(v, l as u8);
                    }
                    lanes.push(self.lower(b, i, s, calls)?);
                }
                gather(b, &lanes)
            }
        })
    }

    /// Instruction `i` (number `k` of the month code) with operands `o`, through its cache when it has one (see
    /// [`CallCache`]; `caches` their start).
    fn lower_cached(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        (k, i): (usize, &Instr),
        o: [Value; 4],
        calls: &mut Calls,
        caches: Value,
    ) -> Result<Value, String> {
        let Some(&at) = self.caches.sites.get(&k) else { return self.lower(b, i, o, calls) };
        let mem = MemFlags::trusted();
        let a = b.ins().bitcast(types::I64, MemFlags::new(), o[0]);
        let x = if operand_count(i.op) == 2 {
            b.ins().bitcast(types::I64, MemFlags::new(), o[1])
        } else {
            b.ins().iconst(types::I64, 0)
        };
        // The entry: `cache_slot` of the operands' bits.
        let turned = b.ins().rotl_imm(x, 32);
        let mixed = b.ins().bxor(a, turned);
        let h = b.ins().imul_imm(mixed, CACHE_HASH as i64);
        let h = b.ins().ushr_imm(h, i64::from(64 - CACHE_BITS));
        let offset = b.ins().imul_imm(h, ENTRY_BYTES as i64);
        let ptr = self.module.target_config().pointer_type();
        let offset = if ptr == types::I64 { offset } else { b.ins().ireduce(ptr, offset) };
        let entry = b.ins().iadd(caches, offset);
        let (last_a, last_x) = (b.ins().load(types::I64, mem, entry, at), b.ins().load(types::I64, mem, entry, at + 8));
        let last = b.ins().load(types::F64, mem, entry, at + 16);
        unless_same(b, [a, x], [last_a, last_x], last, |b| {
            let fresh = self.lower(b, i, o, calls)?;
            b.ins().store(mem, a, entry, at);
            b.ins().store(mem, x, entry, at + 8);
            b.ins().store(mem, fresh, entry, at + 16);
            Ok(fresh)
        })
    }

    /// Whether register `r` is a constant that is a number (not NaN).
    fn is_number(&self, r: u32) -> bool {
        self.consts.get(&r).is_some_and(|c| !c.is_nan())
    }

    /// Whether the target truncates vectors of f64 in one instruction (SSE4.1's `roundpd`, AArch64's `frintz`);
    /// elsewhere each lane is truncated as a scalar.
    /// (The module's target is the host: `cranelift_native`.)
    fn has_vector_trunc(&self) -> bool {
        if cfg!(target_arch = "aarch64") {
            return true;
        }
        cfg!(target_arch = "x86_64")
            && self.module.isa().isa_flags().iter().any(|f| f.name == "has_sse41" && f.as_bool() == Some(true))
    }

    /// Whether native code calls a function for the instruction (rather than computing it inline).
    fn is_call(&self, i: &Instr) -> bool {
        match i.op {
            Op::Lookup(LookupMode::Backward) => {
                self.tables.get(i.d as usize).is_none_or(|t| t.indexed_values().is_none())
            }
            op if op.reads_table() => true,
            op => self.imports.contains_key(&op),
        }
    }

    /// The native form of one instruction with its operand values `o` (those past its operand count unused).
    fn lower(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        i: &Instr,
        o: [Value; 4],
        calls: &mut Calls,
    ) -> Result<Value, String> {
        let n = operand_count(i.op);
        let [a, x, c, d] = o;
        Ok(match i.op {
            Op::Add => b.ins().fadd(a, x),
            Op::Sub => b.ins().fsub(a, x),
            Op::Mul => b.ins().fmul(a, x),
            Op::Div => b.ins().fdiv(a, x),
            Op::Copysign => b.ins().fcopysign(a, x),
            Op::Neg => b.ins().fneg(a),
            Op::Sqrt => b.ins().sqrt(a),
            Op::Abs => b.ins().fabs(a),
            Op::Heaviside | Op::Select => {
                let (yes, no) =
                    if i.op == Op::Select { (x, c) } else { (b.ins().f64const(1.0), b.ins().f64const(0.0)) };
                let z = b.ins().f64const(0.0);
                // `a >= 0` is false for NaN, as in Rust.
                let ge = b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, z);
                b.ins().select(ge, yes, no)
            }
            Op::Trunc => b.ins().trunc(a),
            Op::Floor => b.ins().floor(a),
            Op::Min | Op::Max => {
                // As the interpreter: `x` when it is beyond `a` or `a` is NaN, else `a`.
                let beyond = b.ins().fcmp(if i.op == Op::Min { FloatCC::LessThan } else { FloatCC::GreaterThan }, x, a);
                let take = if constant(b, a).is_some_and(|c| !c.is_nan()) {
                    beyond
                } else if self.is_number(i.b) {
                    b.ins().fcmp(unless_reaching(i.op), a, x)
                } else {
                    let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
                    b.ins().bor(beyond, nan)
                };
                b.ins().select(take, x, a)
            }
            // Comparisons as Rust's: ordered (false for NaN), except `!=`, which is unordered.
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let cc = match i.op {
                    Op::Eq => FloatCC::Equal,
                    Op::Ne => FloatCC::NotEqual,
                    Op::Lt => FloatCC::LessThan,
                    Op::Le => FloatCC::LessThanOrEqual,
                    Op::Gt => FloatCC::GreaterThan,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                let holds = b.ins().fcmp(cc, a, x);
                calls.truth(b, holds)
            }
            Op::And | Op::Or | Op::Not => {
                let p = calls.holds(b, a);
                let holds = match i.op {
                    Op::Not => b.ins().bxor_imm(p, 1),
                    Op::And => {
                        let q = calls.holds(b, x);
                        b.ins().band(p, q)
                    }
                    _ => {
                        let q = calls.holds(b, x);
                        b.ins().bor(p, q)
                    }
                };
                calls.truth(b, holds)
            }
            Op::If => {
                let holds = calls.holds(b, a);
                b.ins().select(holds, x, c)
            }
            Op::NanElse => {
                let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
                b.ins().select(nan, x, a)
            }
            // Two roundings, as the interpreter: no fused multiply-add.
            Op::MulAdd => {
                let m = b.ins().fmul(a, x);
                b.ins().fadd(m, c)
            }
            Op::MulSub => {
                let m = b.ins().fmul(a, x);
                b.ins().fsub(m, c)
            }
            Op::NegMulAdd => {
                let m = b.ins().fmul(a, x);
                b.ins().fsub(c, m)
            }
            Op::MulMulAdd | Op::MulMulSub => {
                let m = b.ins().fmul(a, x);
                let n = b.ins().fmul(c, d);
                if i.op == Op::MulMulAdd { b.ins().fadd(m, n) } else { b.ins().fsub(m, n) }
            }
            Op::Lookup(LookupMode::Backward)
                if let Some(ys) = self.tables.get(i.d as usize).and_then(LookupTable::indexed_values) =>
            {
                // A table at 0, 1, 2, … read in place, as `LookupTable::read` does: NaN at NaN, the first value
                // before 0, else the value at the whole part, at most the last.
                let (zero, last) = (b.ins().f64const(0.0), b.ins().f64const((ys.len() - 1) as f64));
                let whole = b.ins().floor(a);
                let past = b.ins().fcmp(FloatCC::GreaterThan, whole, last);
                let at = b.ins().select(past, last, whole);
                let before = b.ins().fcmp(FloatCC::LessThan, a, zero);
                let at = b.ins().select(before, zero, at);
                let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
                let at = b.ins().select(nan, zero, at);
                // `at` is a whole number in 0..=last, so the load is inside the values, which live as long as the
                // code (`Native::tables` holds them, never mutated).
                // Its index without a saturating conversion's range checks: `at` + 2^52 is exact and holds `at`
                // in the mantissa's low bits (tables are far shorter than 2^52).
                let ptr = self.module.target_config().pointer_type();
                let biased = b.ins().f64const(TWO_TO_52);
                let biased = b.ins().fadd(at, biased);
                let bits = b.ins().bitcast(types::I64, MemFlags::new(), biased);
                let k = b.ins().band_imm(bits, (1 << 52) - 1);
                let k = if ptr == types::I64 { k } else { b.ins().ireduce(ptr, k) };
                let offset = b.ins().imul_imm(k, 8);
                let base = b.ins().iconst(ptr, ys.as_ptr() as i64);
                let addr = b.ins().iadd(base, offset);
                let v = b.ins().load(types::F64, MemFlags::trusted().with_readonly(), addr, 0);
                let nan_value = b.ins().f64const(f64::NAN);
                b.ins().select(nan, nan_value, v)
            }
            op if op.reads_table() => {
                let table = self.tables.get(i.d as usize).ok_or_else(|| format!("no table {}", i.d))?;
                let number = TABLE_OPS.iter().position(|&o| o == op).ok_or("not a table operation")?;
                let ptr = self.module.target_config().pointer_type();
                let addr = b.ins().iconst(ptr, table as *const LookupTable as i64);
                let number = b.ins().iconst(types::I32, number as i64);
                let x = if n == 2 { x } else { b.ins().f64const(0.0) };
                let f = *calls.table.get_or_insert_with(|| self.module.declare_func_in_func(self.table_fn, b.func));
                let call = b.ins().call(f, &[addr, number, a, x]);
                b.inst_results(call)[0]
            }
            op => {
                let id = *self.imports.get(&op).ok_or_else(|| format!("no native form for {op:?}"))?;
                let x = if n == 2 { x } else { b.ins().f64const(0.0) };
                let f = *calls.imports.entry(op).or_insert_with(|| self.module.declare_func_in_func(id, b.func));
                let call = b.ins().call(f, &[a, x]);
                b.inst_results(call)[0]
            }
        })
    }
}

/// How many policies the lanes month loop ([`compile_month_loop`]'s third function) runs at once: the f64
/// lanes of a 128-bit vector register.
pub const LANES: usize = 2;

/// The vector of [`LANES`] values, its lane masks, and its size.
const VECTOR: types::Type = types::F64X2;
const MASK: types::Type = types::I64X2;
const VECTOR_BYTES: usize = 8 * LANES;

/// The flags of a bitcast between a vector of values and its mask (same lanes, the host's order).
fn lane_order() -> MemFlags {
    MemFlags::new().with_endianness(Endianness::Little)
}

/// A vector of the scalars `lanes` (one per lane, in order).
fn gather(b: &mut FunctionBuilder<'_>, lanes: &[Value]) -> Value {
    let mut v = b.ins().scalar_to_vector(VECTOR, lanes[0]);
    for (l, &x) in lanes.iter().enumerate().skip(1) {
        v = b.ins().insertlane(v, x, l as u8);
    }
    v
}

/// `last` when the operands' bits `[a, x]` are `[last_a, last_x]`, else the value `fresh` makes in a block of its own (a
/// remembered call, or a cache entry).
fn unless_same(
    b: &mut FunctionBuilder<'_>,
    [a, x]: [Value; 2],
    [last_a, last_x]: [Value; 2],
    last: Value,
    fresh: impl FnOnce(&mut FunctionBuilder<'_>) -> Result<Value, String>,
) -> Result<Value, String> {
    let same_a = b.ins().icmp(IntCC::Equal, a, last_a);
    let same_x = b.ins().icmp(IntCC::Equal, x, last_x);
    let same = b.ins().band(same_a, same_x);
    let (miss, join) = (b.create_block(), b.create_block());
    let v = b.append_block_param(join, types::F64);
    b.ins().brif(same, join, &[last.into()], miss, &[]);
    b.switch_to_block(miss);
    b.seal_block(miss);
    let made = fresh(b)?;
    b.ins().jump(join, &[made.into()]);
    b.switch_to_block(join);
    b.seal_block(join);
    Ok(v)
}

/// Per lane, `yes` where the lane mask `m` is set, else `no`.
fn choose(b: &mut FunctionBuilder<'_>, m: Value, yes: Value, no: Value) -> Value {
    let (y, n) = (b.ins().bitcast(MASK, lane_order(), yes), b.ins().bitcast(MASK, lane_order(), no));
    let r = b.ins().bitselect(m, y, n);
    b.ins().bitcast(VECTOR, lane_order(), r)
}

/// The address of row `month` of rows of `len` values from `base`.
fn row_of(b: &mut FunctionBuilder<'_>, ptr: types::Type, base: Value, month: Value, len: usize) -> Value {
    let bytes = b.ins().imul_imm(month, 8 * len as i64);
    let bytes = if ptr == types::I64 { bytes } else { b.ins().ireduce(ptr, bytes) };
    b.ins().iadd(base, bytes)
}

/// The registers an instruction reads.
fn operands(i: &Instr) -> impl Iterator<Item = u32> {
    [i.a, i.b, i.c, i.d].into_iter().take(operand_count(i.op))
}

/// The pointers a month loop's first loop reads and writes: the policy's registers, the month-only rows, the
/// cells' rows (when it stores cells), the scratch rows and the calls' caches.
#[derive(Clone, Copy)]
struct Pointers {
    regs: Value,
    rows: Value,
    out: Option<Value>,
    scratch: Value,
    caches: Value,
}

/// What the lanes month loop's first loop reads and writes: the month-only rows, the scratch rows, the number
/// of months, each lane's registers, the policy values interleaved as vectors (at `policy`, each register's
/// offset in `invariant`) and the calls' caches.
#[derive(Clone, Copy)]
struct Lanes<'a> {
    rows: Value,
    scratch: Value,
    months: Value,
    regs: &'a [Value],
    policy: Value,
    invariant: &'a HashMap<u32, i32>,
    caches: Value,
}

/// Where a month loop's values are computed: the first loop's instructions (not depending on the state) and
/// the second's, the values the first hands to the second (in scratch-row order), the first loop's regions
/// and what each instruction is a member of, the key register of each region, the calls remembered outside
/// regions, the registers that depend on the state, the policy values loaded before the loops (none when
/// there are too many), which states are sums kept in memory, and the month-only values' registers.
struct Plan {
    first: Vec<usize>,
    second: Vec<usize>,
    handed: Vec<u32>,
    regions: Vec<Region>,
    member: HashMap<usize, usize>,
    key_of: HashMap<u32, usize>,
    remembered: Vec<usize>,
    stateful: HashSet<u32>,
    outside: Vec<u32>,
    in_memory: Vec<bool>,
    inputs: std::ops::Range<u32>,
}

/// Where the lanes month loop's second loop reads its vectors: [`Env`] with every value a vector of the lanes'.
struct LaneEnv<'a> {
    t: Value,
    row: Value,
    inputs: std::ops::Range<u32>,
    state: &'a [Option<Value>],
    /// Where the sums are, a vector each (8-byte aligned only).
    sums: Value,
    /// Where the policy values the loops read are, a vector each at its offset in `invariant`.
    policy: Value,
    invariant: &'a HashMap<u32, i32>,
    consts: &'a HashMap<u32, f64>,
    /// Each lane's register file.
    regs: &'a [Value],
    /// The month's interleaved scratch row and each handed register's offset in it.
    handed: Value,
    slots: HashMap<u32, i32>,
}

impl LaneEnv<'_> {
    /// The vector of register `r` at instruction `now` (a read is reused within `RELOAD_AFTER` instructions).
    fn get(
        &self,
        b: &mut FunctionBuilder<'_>,
        computed: &HashMap<u32, Value>,
        loaded: &mut HashMap<u32, (Value, usize)>,
        r: u32,
        now: usize,
    ) -> Value {
        if let Some(&v) = computed.get(&r) {
            return v;
        }
        if r as usize == Program::T {
            return self.t;
        }
        let state = (r as usize).checked_sub(1).filter(|&k| k < self.state.len());
        if let Some(&Some(v)) = state.and_then(|k| self.state.get(k)) {
            return v;
        }
        if let Some(&(v, at)) = loaded.get(&r)
            && now - at < RELOAD_AFTER
        {
            return v;
        }
        let mem = MemFlags::trusted();
        // Scratch rows are 8-byte aligned only: no alignment promised for vectors.
        let vmem = MemFlags::new().with_notrap();
        let v = if let Some(k) = state {
            b.ins().load(VECTOR, vmem, self.sums, (VECTOR_BYTES * k) as i32)
        } else if let Some(&offset) = self.invariant.get(&r) {
            b.ins().load(VECTOR, vmem, self.policy, offset)
        } else if let Some(&offset) = self.slots.get(&r) {
            b.ins().load(VECTOR, vmem, self.handed, offset)
        } else if self.inputs.contains(&r) {
            let x = b.ins().load(types::F64, mem, self.row, 8 * (r - self.inputs.start) as i32);
            b.ins().splat(VECTOR, x)
        } else if let Some(&c) = self.consts.get(&r) {
            let x = b.ins().f64const(c);
            b.ins().splat(VECTOR, x)
        } else {
            let lanes: Vec<Value> = self.regs.iter().map(|&g| b.ins().load(types::F64, mem, g, 8 * r as i32)).collect();
            gather(b, &lanes)
        };
        loaded.insert(r, (v, now));
        v
    }
}

/// The value instruction `i` (a call) makes at operands (0, 0): where a remembered call starts.
fn value_at_zero(tables: &[LookupTable], i: &Instr) -> f64 {
    match tables.get(i.d as usize) {
        Some(t) if i.op.reads_table() => t.apply(i.op, 0.0, 0.0),
        _ => i.op.apply(0.0, 0.0, 0.0, 0.0),
    }
}

/// How many calls of a month loop keep a cache (the first in the code).
const CACHED_CALLS: usize = 8;
/// A cache has 2^`CACHE_BITS` entries of `ENTRY_BYTES` (the operands' bits and the value, padded): 16 KiB.
const CACHE_BITS: u32 = 9;
const ENTRY_BYTES: i32 = 32;
/// The multiplier of the caches' hash (2^64 over the golden ratio, odd: Knuth's multiplicative hashing).
const CACHE_HASH: u64 = 0x9E37_79B9_7F4A_7C15;

/// The entry of a cache for operands with bits `a` and `x` (the code [`Gen::lower_cached`] generates).
fn cache_slot(a: u64, x: u64) -> u64 {
    (a ^ x.rotate_left(32)).wrapping_mul(CACHE_HASH) >> (64 - CACHE_BITS)
}

/// The calls of a projection's month loops (powers, exponentials, table reads by search) that do not depend on
/// the state each keep a cache of operands and values, kept at the head of the runner's scratch from one policy
/// to the next and shared by the loop's functions: a rate by policy year another policy already computed (the
/// lapse rate of the same duration) is read, not computed again. A cache is direct-mapped by a hash of the
/// operands' bits ([`cache_slot`]). An entry starts with operands whose slot is another entry, so it is never
/// hit before the call fills it: a hit gives the call's own bits. The head starts with a stamp of its loop (see
/// [`MonthLoop::prepare`]): a scratch another loop used is emptied first.
#[derive(Clone, Default)]
struct CallCache {
    /// Each cached instruction's byte offset from the caches' start.
    sites: HashMap<usize, i32>,
    /// The head's size in values: the stamp and the entries (0 with no cached call).
    words: usize,
}

impl CallCache {
    fn new(g: &Gen<'_>, code: &[Instr]) -> CallCache {
        let mut stateful: HashSet<u32> = (1..=g.n_states as u32).collect();
        let mut sites = HashMap::new();
        for (k, i) in code.iter().enumerate() {
            if operands(i).any(|r| stateful.contains(&r)) {
                stateful.insert(i.dst);
            } else if g.is_call(i) && sites.len() < CACHED_CALLS {
                sites.insert(k, sites.len() as i32 * (ENTRY_BYTES << CACHE_BITS));
            }
        }
        let words = if sites.is_empty() { 0 } else { 1 + sites.len() * ((ENTRY_BYTES as usize / 8) << CACHE_BITS) };
        CallCache { sites, words }
    }

    /// The head a scratch starts with: a new stamp, then each call's entries, each at operands of another slot:
    /// (0, 0), or (1, 0) in the slot of (0, 0).
    fn head(&self) -> Vec<f64> {
        static STAMPS: AtomicU64 = AtomicU64::new(1);
        let mut head = vec![0.0; self.words];
        if let Some((stamp, entries)) = head.split_first_mut() {
            *stamp = f64::from_bits(STAMPS.fetch_add(1, Ordering::Relaxed));
            for (n, entry) in entries.chunks_exact_mut(ENTRY_BYTES as usize / 8).enumerate() {
                let slot = n as u64 % (1 << CACHE_BITS);
                if let Some(a) = entry.first_mut()
                    && slot == cache_slot(0, 0)
                {
                    *a = f64::from_bits(1);
                }
            }
        }
        head
    }
}

/// A block of the first month loop computed again only when its key's bits change.
struct Region {
    /// The register of the key: a whole number (a policy year, an age) every other value of the block
    /// depends on the month through.
    key: u32,
    /// The instructions of the block, in order.
    members: Vec<usize>,
    /// The registers of its values read outside it.
    outputs: Vec<u32>,
}

/// The fewest instructions a region has: below this the comparison costs about what it saves.
const MIN_REGION: usize = 6;

/// The most instructions of a first pass searched for regions (the search is quadratic in the worst case, a
/// chain of values each reading the one before); a larger pass runs without regions.
const MAX_REGION_ANALYSIS: usize = 5000;

/// The regions of `first` (instructions of `code` in order, none depending on the state): `source` tells
/// the registers through which values vary by month (`t`, the month-only values). A value's region key is
/// the nearest value every path from a source to it passes through (its dominator in the data flow) that is
/// a whole number by construction (a truncation, or sums and products of one with comparisons and
/// constants); keys are taken outermost first, so regions do not nest.
fn regions(code: &[Instr], first: &[usize], source: impl Fn(u32) -> bool) -> Vec<Region> {
    // The walks up the dominator tree are as long as the data flow is deep: bounded by the pass's size.
    if first.len() > MAX_REGION_ANALYSIS {
        return vec![];
    }
    const ROOT: u32 = u32::MAX;
    let mut idom: HashMap<u32, u32> = HashMap::new();
    let mut depth: HashMap<u32, usize> = HashMap::from([(ROOT, 0)]);
    let index: HashMap<u32, usize> = first.iter().map(|&k| (code[k].dst, k)).collect();
    let mut whole: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let lca = |mut a: u32, mut b: u32, idom: &HashMap<u32, u32>, depth: &HashMap<u32, usize>| {
        while a != b {
            if depth[&a] >= depth[&b] {
                a = idom[&a];
            } else {
                b = idom[&b];
            }
        }
        a
    };
    for &k in first {
        let i = &code[k];
        let dynamic: Vec<u32> = [i.a, i.b, i.c, i.d]
            .into_iter()
            .take(operand_count(i.op))
            .filter_map(|r| if source(r) { Some(ROOT) } else { index.contains_key(&r).then_some(r) })
            .collect();
        let d = dynamic.iter().copied().reduce(|a, b| lca(a, b, &idom, &depth)).unwrap_or(ROOT);
        idom.insert(i.dst, d);
        depth.insert(i.dst, depth[&d] + 1);
        let flag = |r: &u32| {
            index.get(r).is_some_and(|&j| {
                matches!(code[j].op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::And | Op::Or | Op::Not)
            })
        };
        let is_whole = match i.op {
            Op::Trunc | Op::Floor => true,
            Op::Add | Op::Sub | Op::Mul => {
                dynamic.iter().any(|r| whole.contains(r)) && dynamic.iter().all(|r| whole.contains(r) || flag(r))
            }
            _ => false,
        };
        if is_whole {
            whole.insert(i.dst);
        }
    }
    // Each value's nearest whole-number dominator.
    let mut taken: HashMap<u32, usize> = HashMap::new();
    let mut regions: Vec<Region> = vec![];
    let mut members: HashMap<u32, Vec<usize>> = HashMap::new();
    for &k in first {
        let mut d = idom[&code[k].dst];
        let mut key = None;
        while d != ROOT {
            if whole.contains(&d) {
                key = Some(d);
            }
            d = idom[&d];
        }
        // The outermost whole-number dominator, unless that key is itself inside another region.
        if let Some(key) = key {
            members.entry(key).or_default().push(k);
        }
    }
    for &k in first {
        let key = code[k].dst;
        if let Some(m) = members.remove(&key)
            && m.len() >= MIN_REGION
            && !taken.contains_key(&key)
        {
            for &j in &m {
                taken.insert(code[j].dst, regions.len());
            }
            regions.push(Region { key, members: m, outputs: vec![] });
        }
    }
    regions
}

/// Where a month loop's values come from: `t`, the month's row of month-only values, the state (the second
/// loop), the policy's values loaded before the loops, constants, the register file, and the values the
/// first loop handed over (the month's scratch row and each register's offset in it).
#[derive(Clone)]
struct Env<'a> {
    t: Value,
    row: Value,
    inputs: std::ops::Range<u32>,
    state: &'a [Option<Value>],
    /// Where the states not carried in registers are (`None` in the first loop, which reads no state).
    sums: Option<Value>,
    invariant: &'a HashMap<u32, Value>,
    consts: &'a HashMap<u32, f64>,
    regs: Value,
    handed: Option<(Value, &'a HashMap<u32, i32>)>,
}

impl Env<'_> {
    /// The value of register `r` at instruction `now`: computed in this loop, or read (a read is reused
    /// within `RELOAD_AFTER` instructions).
    fn get(
        &self,
        b: &mut FunctionBuilder<'_>,
        computed: &HashMap<u32, Value>,
        loaded: &mut HashMap<u32, (Value, usize)>,
        r: u32,
        now: usize,
    ) -> Value {
        if let Some(&v) = computed.get(&r) {
            return v;
        }
        if r as usize == Program::T {
            return self.t;
        }
        let state = (r as usize).checked_sub(1).filter(|&k| k < self.state.len());
        if let Some(&Some(v)) = state.and_then(|k| self.state.get(k)) {
            return v;
        }
        if let Some(&v) = self.invariant.get(&r) {
            return v;
        }
        if let Some(&(v, at)) = loaded.get(&r)
            && now - at < RELOAD_AFTER
        {
            return v;
        }
        let mem = MemFlags::trusted();
        let v = if let Some((k, sums)) = state.zip(self.sums) {
            b.ins().load(types::F64, mem, sums, 8 * k as i32)
        } else if let Some((row, &offset)) = self.handed.and_then(|(row, slots)| Some(row).zip(slots.get(&r))) {
            b.ins().load(types::F64, mem, row, offset)
        } else if self.inputs.contains(&r) {
            b.ins().load(types::F64, mem, self.row, 8 * (r - self.inputs.start) as i32)
        } else {
            match self.consts.get(&r) {
                Some(&c) => b.ins().f64const(c),
                None => b.ins().load(types::F64, mem, self.regs, 8 * r as i32),
            }
        };
        loaded.insert(r, (v, now));
        v
    }
}

/// What lowering keeps per generated function: the helper functions it calls, declared in it on first use,
/// and the condition behind each truth value (1.0 or 0.0) it made.
#[derive(Default)]
struct Calls {
    table: Option<FuncRef>,
    imports: HashMap<Op, FuncRef>,
    conditions: HashMap<Value, Value>,
}

impl Calls {
    /// 1.0 where the condition `holds`, else 0.0; remembered, so that a condition, a logical operation or a
    /// choice reading it uses `holds` itself (`truth(h) != 0` is `h`).
    fn truth(&mut self, b: &mut FunctionBuilder<'_>, holds: Value) -> Value {
        let v = truth(b, holds);
        self.conditions.insert(v, holds);
        v
    }

    /// Whether `v` counts as true: `v != 0` (true for NaN, as in the interpreter).
    fn holds(&self, b: &mut FunctionBuilder<'_>, v: Value) -> Value {
        match self.conditions.get(&v) {
            Some(&h) => h,
            None => {
                let z = b.ins().f64const(0.0);
                b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Dialect, Program, compile};

    /// Every operation and function, with products read once (fused by `finish`) and read twice (not).
    const ALL: &str = "in_i { a = 1.5, b = -0.25 }
k { exp(a) * b }
u_i { x = a, y = 1, z = b }
F_i {
  a * x + b * y - k * z + x * y - z + pow(x, a) + min(x, y) + max(y, z) + copysign(x, z) - x / y,
  exp(-x) + log(y) + log10(abs(z)) + sqrt(abs(x)) + sin(x) * cos(y) + tan(z) + sinh(x) - cosh(y) + tanh(z),
  arcsinh(x) + arccosh(abs(y) + 1) + arctan(y) + sigmoid(z) + heaviside(x) + piecewise(x - y, z, y - z, x, t) - x * y * z,
}
out_i { x * y - z * t, sigmoid(x) + pow(y, 2), x }
";

    use crate::bits;

    /// A call cache's entries start with operands whose slot is another entry, so none is hit before it is filled;
    /// each head has its own stamp.
    #[test]
    fn cache_entries_start_unreachable() {
        let sites = (0..3).map(|k| (k, k as i32 * (super::ENTRY_BYTES << super::CACHE_BITS))).collect();
        let cache = super::CallCache { sites, words: 1 + 3 * ((super::ENTRY_BYTES as usize / 8) << super::CACHE_BITS) };
        let (head, again) = (cache.head(), cache.head());
        assert_ne!(head[0].to_bits(), again[0].to_bits());
        assert_ne!(head[0].to_bits(), 0, "a zeroed scratch is not stamped");
        for (n, entry) in head[1..].chunks_exact(super::ENTRY_BYTES as usize / 8).enumerate() {
            let slot = n as u64 % (1 << super::CACHE_BITS);
            assert_ne!(super::cache_slot(entry[0].to_bits(), entry[1].to_bits()), slot, "entry {n}");
        }
    }

    /// Native and interpreted right-hand side, Jacobian and outputs agree bit for bit, also at zeros of
    /// both signs, infinities and NaN.
    #[test]
    fn native_code_matches_the_interpreter_bit_for_bit() {
        let interp: Program = compile(ALL, Dialect::Ode).unwrap_or_else(|e| panic!("{e}")).program;
        let mut native = interp.clone();
        native.compile_native().expect("the JIT compiles the model");
        assert!(native.is_native() && !interp.is_native());
        let special = [0.0, -0.0, 1.0, -1.0, 0.5, -2.75, 1e300, -1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let (n, no, nj) = (interp.n_states, interp.out_regs.len(), interp.jac_entries.len());
        for params in [[1.5, -0.25], [-0.5, 3.0], [0.0, f64::NAN]] {
            let mut ri = vec![0.0; interp.n_regs];
            let mut y = vec![0.0; n];
            interp.start(&mut ri, &params, &mut y);
            let mut rn = ri.clone();
            for (k, &s) in special.iter().enumerate() {
                let y = [s, special[(k + 3) % special.len()], special[(k + 7) % special.len()]];
                let t = special[(k + 5) % special.len()];
                let [mut a, mut b] = [vec![0.0; n], vec![0.0; n]];
                interp.rhs(&mut ri, t, &y, &mut a);
                native.rhs(&mut rn, t, &y, &mut b);
                assert_eq!(bits(&a), bits(&b), "rhs at {y:?}, {t}");
                let [mut a, mut b] = [vec![0.0; nj], vec![0.0; nj]];
                interp.jacobian_values(&mut ri, t, &y, &mut a);
                native.jacobian_values(&mut rn, t, &y, &mut b);
                assert_eq!(bits(&a), bits(&b), "jacobian at {y:?}, {t}");
                let [mut a, mut b] = [vec![0.0; no], vec![0.0; no]];
                interp.outputs(&mut ri, t, &y, &mut a);
                native.outputs(&mut rn, t, &y, &mut b);
                assert_eq!(bits(&a), bits(&b), "outputs at {y:?}, {t}");
                let (mut ya, mut yb) = (vec![0.0; n], vec![0.0; n]);
                let [mut a, mut b] = [vec![0.0; n], vec![0.0; n]];
                interp.rhs_from(&mut ri, t, &mut ya, y.iter().copied(), &mut a);
                native.rhs_from(&mut rn, t, &mut yb, y.iter().copied(), &mut b);
                assert_eq!((bits(&a), bits(&ya)), (bits(&b), bits(&yb)), "rhs_from at {y:?}, {t}");
            }
        }
    }

    /// The sensitivity right-hand side from native code matches the interpreter's bit for bit.
    #[test]
    fn native_sensitivity_code_matches_the_interpreter_bit_for_bit() {
        let interp = crate::compile_with_sensitivities(ALL).unwrap_or_else(|e| panic!("{e}")).program;
        let mut native = interp.clone();
        native.compile_native().expect("the JIT compiles the model with its sensitivity code");
        let special = [0.0, -0.0, 1.0, -1.0, 0.5, -2.75, 1e300, -1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let (n, np) = (interp.n_states, interp.n_params);
        assert!(!interp.pjac_entries.is_empty() && !interp.jac_entries.is_empty());
        for params in [[1.5, -0.25], [-0.5, 3.0], [0.0, f64::NAN]] {
            let mut ri = vec![0.0; interp.n_regs];
            let mut y0 = vec![0.0; n];
            interp.start(&mut ri, &params, &mut y0);
            interp.start_sensitivities(&mut ri, &mut vec![0.0; n * np]);
            let mut rn = ri.clone();
            let mut work = Vec::new();
            for (k, &v) in special.iter().enumerate() {
                let y = [v, special[(k + 3) % special.len()], special[(k + 7) % special.len()]];
                let t = special[(k + 5) % special.len()];
                let s: Vec<f64> = (0..n * np).map(|i| special[(k + i) % special.len()]).collect();
                let [mut dya, mut dyb] = [vec![0.0; n], vec![0.0; n]];
                let [mut dsa, mut dsb] = [vec![0.0; n * np], vec![0.0; n * np]];
                interp.sensitivity_rhs(&mut ri, &mut Vec::new(), t, &y, &s, &mut dya, &mut dsa);
                native.sensitivity_rhs(&mut rn, &mut work, t, &y, &s, &mut dyb, &mut dsb);
                assert_eq!((bits(&dya), bits(&dsa)), (bits(&dyb), bits(&dsb)), "sensitivity rhs at {y:?}, {t}");
            }
        }
    }
}

#[cfg(test)]
mod op_tests {
    use crate::system::LookupMode;
    use crate::{Instr, LookupTable, Op, Program};

    /// A table at 0, 1, 2, … read backward (inlined in native code) and one at other points (a call), at
    /// every kind of position: native code gives the interpreter's bits.
    #[test]
    fn table_reads_match_the_interpreter_bit_for_bit() {
        let indexed = LookupTable::new(&[(0.0, 3.5), (1.0, -1.0), (2.0, 7.25)]).unwrap();
        let searched = LookupTable::new(&[(0.0, 3.5), (1.5, -1.0), (2.0, 7.25)]).unwrap();
        assert!(indexed.indexed_values().is_some() && searched.indexed_values().is_none());
        let mut p = Program::new(1, 0);
        for (k, table) in [0, 1].into_iter().enumerate() {
            let dst = 2 + k as u32;
            p.out.push(Instr { op: Op::Lookup(LookupMode::Backward), dst, a: 1, b: 1, c: 1, d: table });
            p.out_regs.push(dst);
        }
        p.n_regs = 4;
        p.f = vec![2];
        p.rhs = p.out.clone();
        p.tables = vec![indexed, searched].into();
        let mut native = p.clone();
        native.compile_native().expect("the JIT compiles table reads");
        let (mut ri, mut rn) = (vec![0.0; p.n_regs], vec![0.0; p.n_regs]);
        let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
        for x in [
            f64::NAN,
            -f64::NAN,
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.25,
            1.0,
            1.5,
            1.9999999999999998,
            2.0,
            2.5,
            3.0,
            1e300,
            f64::INFINITY,
        ] {
            p.outputs(&mut ri, 0.0, &[x], &mut a);
            native.outputs(&mut rn, 0.0, &[x], &mut b);
            assert_eq!(crate::bits(&a), crate::bits(&b), "read at {x}");
        }
    }

    /// Every operation the DiffSL language has no syntax for, each over all pairs (and triples) of special
    /// values: native code gives the interpreter's bits.
    #[test]
    fn the_vensim_operations_match_the_interpreter_bit_for_bit() {
        use Op::*;
        let ops = [Eq, Ne, Lt, Le, Gt, Ge, And, Or, Not, If, Trunc, Floor, Modulo, Asin, Acos, Atan, NanElse, Min, Max];
        // States x, y, z in registers 1..=3; one output per operation, reading them.
        let mut p = Program::new(3, 0);
        for (k, &op) in ops.iter().enumerate() {
            let dst = 4 + k as u32;
            p.out.push(Instr { op, dst, a: 1, b: 2, c: 3, d: 0 });
            p.out_regs.push(dst);
        }
        p.n_regs = 4 + ops.len();
        p.f = vec![4, 5, 6];
        p.rhs = p.out.clone();
        let mut native = p.clone();
        native.compile_native().expect("the JIT compiles every operation");
        let special =
            [0.0, -0.0, 1.0, -1.0, 0.5, -2.75, 3.0, 7.5, -1e-300, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let (mut ri, mut rn) = (vec![0.0; p.n_regs], vec![0.0; p.n_regs]);
        let (mut a, mut b) = (vec![0.0; ops.len()], vec![0.0; ops.len()]);
        for &x in &special {
            for &y in &special {
                for &z in &special[..4] {
                    p.outputs(&mut ri, 0.0, &[x, y, z], &mut a);
                    native.outputs(&mut rn, 0.0, &[x, y, z], &mut b);
                    for (k, op) in ops.iter().enumerate() {
                        let want = crate::bits(&[op.apply(x, y, z, 0.0)]);
                        assert_eq!(crate::bits(&a[k..=k]), want, "{op:?}({x}, {y}, {z}) interpreted");
                        assert_eq!(crate::bits(&b[k..=k]), want, "{op:?}({x}, {y}, {z}) native");
                    }
                }
            }
        }
    }
}
