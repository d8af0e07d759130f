//! [`GpuKernels`]: [`ColumnarKernels`] on the GPU where placement says so, the CPU
//! kernels everywhere else, and the explicit group-by and join-probe entry points.
//!
//! Per batch: the compiler-side eligibility of the predicate decides whether the
//! kernel can run at all; [`crate::placement::place`] picks the device. On the GPU the
//! generated kernel evaluates the predicate and every supported computed projection;
//! passed-through columns are filtered on the host and unsupported projections are
//! evaluated by [`CpuKernels`] over the kept rows (delegation per expression). Any
//! [`GpuError`] (no driver, compile or launch failure, a caught panic, or an integer
//! overflow flag) recomputes the whole batch with [`CpuKernels`], logs the reason once
//! per process and class, and counts a fallback.

use crate::codegen::{generate_calc, CalcProgram};
use crate::device::{GpuDevice, GpuError};
use crate::groupby::{
    agg_inputs, check_inputs, finalize, group_by_cpu, int_keys, int_values, join_inputs,
    join_probe_cpu, partial_from_states, AggInput, GroupByOutput, GroupStates, IntKeys,
    JoinMatches,
};
use crate::placement::{place, GpuConfig};
use arrow::array::{
    make_array, Array, ArrayDataBuilder, ArrayRef, BooleanArray, Int64Array, RecordBatch,
    RecordBatchOptions, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::compute::filter;
use sluice_catalogs::{Schema, SqlType};
use sluice_columnar::{normalize, ColumnarKernels, CpuKernels, Device, DeviceMetrics, KernelError};
use sluice_expr::gpu_support::calc_gpu_support;
use sluice_expr::{AggFunc, AggregateCall, ScalarExpr};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

/// The process's GPU (device 0 of those `CUDA_VISIBLE_DEVICES` shows), opened on
/// first use, or why there is none.
fn shared_device() -> Result<Arc<GpuDevice>, GpuError> {
    static DEVICE: OnceLock<Result<Arc<GpuDevice>, GpuError>> = OnceLock::new();
    DEVICE
        .get_or_init(|| guarded(|| GpuDevice::open(0)).map(Arc::new))
        .clone()
}

/// Runs `f`, turning a panic inside cudarc into [`GpuError::Panic`].
fn guarded<T>(f: impl FnOnce() -> Result<T, GpuError>) -> Result<T, GpuError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(GpuError::Panic(msg))
        }
    }
}

/// Logs `msg` on standard error once per process per `class`.
fn log_once(class: &str, msg: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    if let Ok(mut s) = seen.lock() {
        if s.insert(class.to_string()) {
            tracing::warn!("sluice-gpu: {msg}");
        }
    }
}

/// Whether a usable GPU is present in this process: `Ok` or the reason there is none.
pub fn gpu_available() -> Result<(), GpuError> {
    shared_device().map(|_| ())
}

/// The name of the process's GPU, when there is one.
pub fn gpu_name() -> Option<String> {
    shared_device().ok().map(|d| d.name().to_string())
}

/// The process's GPU, for the benchmark's bandwidth measurements.
pub fn device() -> Result<Arc<GpuDevice>, GpuError> {
    shared_device()
}

/// GPU kernels with CPU fallback (see the module docs).
pub struct GpuKernels {
    cpu: CpuKernels,
    config: GpuConfig,
    /// The device, or why it cannot be used; `None` until the first GPU placement.
    device: OnceLock<Result<Arc<GpuDevice>, GpuError>>,
    programs: Mutex<HashMap<String, Arc<CalcProgram>>>,
}

impl std::fmt::Debug for GpuKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuKernels")
            .field("config", &self.config)
            .finish()
    }
}

impl GpuKernels {
    /// Kernels placing work by `config`. Opens no device until one is needed.
    pub fn new(config: GpuConfig) -> Self {
        GpuKernels {
            cpu: CpuKernels,
            config,
            device: OnceLock::new(),
            programs: Mutex::new(HashMap::new()),
        }
    }

    /// The placement settings.
    pub fn config(&self) -> &GpuConfig {
        &self.config
    }

    fn device(&self) -> Result<Arc<GpuDevice>, GpuError> {
        self.device
            .get_or_init(|| {
                let d = shared_device();
                match &d {
                    Ok(dev) => log_once("open", &format!("using GPU {}", dev.name())),
                    Err(e) => log_once(
                        e.reason(),
                        &format!("GPU unavailable, columnar stages run on the CPU: {e}"),
                    ),
                }
                d
            })
            .clone()
    }

    /// Device availability as `place` wants it, opening the device only when the job
    /// may use it.
    fn availability(&self) -> Result<(), String> {
        if !self.config.wants_gpu() {
            return Err("not requested".to_string());
        }
        self.device().map(|_| ()).map_err(|e| e.to_string())
    }

    fn program(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        types: &[SqlType],
    ) -> Result<Arc<CalcProgram>, GpuError> {
        let key = format!("{predicate:?}|{project:?}|{types:?}");
        if let Some(p) = self.programs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let p = Arc::new(
            generate_calc(predicate, project, types)
                .map_err(|e| GpuError::Unsupported(e.to_string()))?,
        );
        if let Ok(mut m) = self.programs.lock() {
            m.insert(key, Arc::clone(&p));
        }
        Ok(p)
    }

    /// Where a `Calc` batch goes.
    fn decide(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        types: &[SqlType],
        rows: usize,
    ) -> Device {
        // The compiler's rule, so that EXPLAIN and placement agree.
        let eligibility = calc_gpu_support(predicate, project, types);
        let eligible = eligibility.as_ref().map(|_| ()).map_err(String::as_str);
        let avail = if eligible.is_ok() && self.config.wants_gpu() {
            self.availability()
        } else {
            Ok(())
        };
        place(
            &self.config,
            eligible,
            avail.as_ref().map(|_| ()).map_err(String::as_str),
            rows,
        )
        .device
    }

    /// The fused stage on the GPU (see the module docs).
    fn calc_gpu(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
    ) -> Result<Result<RecordBatch, KernelError>, GpuError> {
        let dev = self.device()?;
        let types = input.types();
        let program = self.program(predicate, project, &types)?;
        let rows = batch.num_rows();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (c, ty) in batch.columns().iter().zip(&types) {
            columns.push(normalize(c, *ty).map_err(|e| GpuError::Unsupported(e.to_string()))?);
        }
        let (mask, outs) = guarded(|| dev.run_calc(&program, &columns, rows))?;
        let kept = match filter_batch(batch, &mask) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let Some(exprs) = project else {
            return Ok(Ok(kept));
        };
        let mut computed: HashMap<usize, ArrayRef> = HashMap::new();
        for ((pos, ty), (values, valid)) in program.outputs.iter().zip(outs) {
            let full = output_array(*ty, values, valid, rows)?;
            let f = filter(&full, &mask).map_err(|e| GpuError::Driver(e.to_string()))?;
            computed.insert(*pos, f);
        }
        let mut out_cols = Vec::with_capacity(exprs.len());
        for (pos, e) in exprs.iter().enumerate() {
            let col = match (e, computed.remove(&pos)) {
                (_, Some(c)) => c,
                (ScalarExpr::Column(i), None) => match kept.columns().get(*i) {
                    Some(c) => Arc::clone(c),
                    None => return Ok(Err(KernelError::Internal(format!("no column {i}")))),
                },
                (e, None) => match self.cpu.evaluate(e, &kept, &types) {
                    Ok(c) => c,
                    Err(err) => return Ok(Err(err)),
                },
            };
            out_cols.push(col);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(kept.num_rows()));
        Ok(
            RecordBatch::try_new_with_options(output.to_arrow(), out_cols, &options).map_err(|e| {
                KernelError::Internal(format!("calc output does not match {output}: {e}"))
            }),
        )
    }

    /// Counts and logs a fallback.
    fn fallback(&self, e: &GpuError, metrics: Option<&DeviceMetrics>) {
        log_once(
            &format!("fallback-{}", e.reason()),
            &format!("falling back to the CPU ({}): {e}", e.reason()),
        );
        if let Some(m) = metrics {
            m.add_fallback(e.reason());
        }
    }

    fn calc_placed(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
        metrics: Option<&DeviceMetrics>,
    ) -> Result<RecordBatch, KernelError> {
        let types = input.types();
        let rows = batch.num_rows();
        if self.decide(predicate, project, &types, rows) == Device::Gpu {
            match self.calc_gpu(predicate, project, batch, input, output) {
                Ok(result) => {
                    if let Some(m) = metrics {
                        m.add_rows(Device::Gpu, rows as u64);
                    }
                    return result;
                }
                Err(e) => self.fallback(&e, metrics),
            }
        }
        if let Some(m) = metrics {
            m.add_rows(Device::Cpu, rows as u64);
        }
        self.cpu.calc(predicate, project, batch, input, output)
    }

    /// Hash group-by on one key column (integers, or strings through dictionary codes)
    /// with integer aggregates, on the GPU when `SLUICE_GPU`/`gpus`/the threshold say
    /// so, else (or on any GPU failure) with [`group_by_cpu`]. Both give identical
    /// results. Fallbacks are counted in `metrics` when given.
    pub fn group_by(
        &self,
        keys: &ArrayRef,
        aggs: &[AggInput],
        metrics: Option<&DeviceMetrics>,
    ) -> Result<GroupByOutput, KernelError> {
        check_inputs(keys, aggs)?;
        let rows = keys.len();
        let avail = if self.config.wants_gpu() {
            self.availability()
        } else {
            Ok(())
        };
        let decision = place(
            &self.config,
            Ok(()),
            avail.as_ref().map(|_| ()).map_err(String::as_str),
            rows,
        );
        if decision.device == Device::Gpu {
            match self.group_by_gpu(keys, aggs) {
                Ok(r) => {
                    if let Some(m) = metrics {
                        m.add_rows(Device::Gpu, rows as u64);
                    }
                    return r;
                }
                Err(e) => self.fallback(&e, metrics),
            }
        }
        if let Some(m) = metrics {
            m.add_rows(Device::Cpu, rows as u64);
        }
        group_by_cpu(keys, aggs)
    }

    fn group_by_gpu(
        &self,
        keys: &ArrayRef,
        aggs: &[AggInput],
    ) -> Result<Result<GroupByOutput, KernelError>, GpuError> {
        let (states, k) = self.group_states_gpu(keys, aggs)?;
        Ok(finalize(states, keys, &k.dictionary, aggs))
    }

    /// The group-by's accumulation on the GPU: per-group states and the integer keys.
    fn group_states_gpu(
        &self,
        keys: &ArrayRef,
        aggs: &[AggInput],
    ) -> Result<(GroupStates, IntKeys), GpuError> {
        let dev = self.device()?;
        let k = int_keys(keys).map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let key_array = Int64Array::new(
            k.values.clone().into(),
            k.valid.clone().map(NullBuffer::from),
        );
        let mut args = Vec::with_capacity(aggs.len());
        for a in aggs {
            args.push(match (&a.arg, a.func) {
                (None, _) => None,
                (Some(arg), AggFunc::Count) => Some((Arc::clone(arg), true)),
                (Some(arg), _) => {
                    let ints: ArrayRef = Arc::new(
                        int_values(arg).map_err(|e| GpuError::Unsupported(e.to_string()))?,
                    );
                    Some((ints, false))
                }
            });
        }
        // COUNT(x) of a non-fixed-width type: count on the host from validity instead.
        for a in args.iter_mut() {
            if let Some((arr, true)) = a {
                if arr.data_type().primitive_width().is_none()
                    && arr.data_type() != &arrow::datatypes::DataType::Boolean
                {
                    let valid: Vec<Option<i64>> = (0..arr.len())
                        .map(|i| arr.is_valid(i).then_some(0))
                        .collect();
                    *a = Some((Arc::new(Int64Array::from(valid)), true));
                }
            }
        }
        let states = guarded(|| dev.run_group_by(&key_array, &args))?;
        Ok((states, k))
    }

    /// The pre-aggregation of one batch with the group-by kernel: the GPU's group
    /// states as partial rows. `Ok(None)` when the shape is not the kernel's (more than
    /// one key, non-integer arguments) or placement keeps the batch on the CPU.
    fn partial_aggregate_gpu(
        &self,
        batch: &RecordBatch,
        group_by: &[usize],
        aggs: &[AggregateCall],
        input_types: &[SqlType],
        metrics: &DeviceMetrics,
    ) -> Result<Option<RecordBatch>, KernelError> {
        let rows = batch.num_rows();
        if !self.config.wants_gpu()
            || sluice_expr::gpu_support::aggregate_gpu_support(group_by, aggs, input_types).is_err()
        {
            return Ok(None);
        }
        let decision = place(
            &self.config,
            Ok(()),
            self.availability()
                .as_ref()
                .map(|_| ())
                .map_err(String::as_str),
            rows,
        );
        if decision.device != Device::Gpu {
            return Ok(None);
        }
        let (keys, inputs) = match agg_inputs(batch, group_by, aggs) {
            Some(x) => x,
            None => return Ok(None),
        };
        match self.group_states_gpu(&keys, &inputs) {
            Ok((states, k)) => {
                metrics.add_rows(Device::Gpu, rows as u64);
                let schema = sluice_columnar::partial_schema(input_types, group_by, aggs);
                partial_from_states(&states, &keys, &k.dictionary, &inputs, schema.to_arrow())
                    .map(Some)
            }
            Err(e) => {
                self.fallback(&e, Some(metrics));
                Ok(None)
            }
        }
    }

    /// Hash-join probe on one integer key: every `(probe row, build row)` pair with
    /// equal non-NULL keys, ordered by probe row, then build row. GPU or CPU twin
    /// ([`join_probe_cpu`]) as for [`GpuKernels::group_by`].
    pub fn join_probe(
        &self,
        build: &ArrayRef,
        probe: &ArrayRef,
        metrics: Option<&DeviceMetrics>,
    ) -> Result<JoinMatches, KernelError> {
        let (b, p) = join_inputs(build, probe)?;
        let rows = probe.len();
        let avail = if self.config.wants_gpu() {
            self.availability()
        } else {
            Ok(())
        };
        let decision = place(
            &self.config,
            Ok(()),
            avail.as_ref().map(|_| ()).map_err(String::as_str),
            rows,
        );
        if decision.device == Device::Gpu {
            let run = self
                .device()
                .and_then(|dev| guarded(|| dev.run_join_probe(&b, &p)));
            match run {
                Ok((mut pr, mut br)) => {
                    if let Some(m) = metrics {
                        m.add_rows(Device::Gpu, rows as u64);
                    }
                    let mut pairs: Vec<(u32, u32)> = pr.drain(..).zip(br.drain(..)).collect();
                    pairs.sort_unstable();
                    let (pr, br): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
                    return Ok(JoinMatches {
                        probe: UInt32Array::from(pr),
                        build: UInt32Array::from(br),
                    });
                }
                Err(e) => self.fallback(&e, metrics),
            }
        }
        if let Some(m) = metrics {
            m.add_rows(Device::Cpu, rows as u64);
        }
        join_probe_cpu(build, probe)
    }
}

/// `batch`'s rows where `mask` is true.
fn filter_batch(batch: &RecordBatch, mask: &BooleanArray) -> Result<RecordBatch, KernelError> {
    arrow::compute::filter_record_batch(batch, mask)
        .map_err(|e| KernelError::Internal(format!("filter failed: {e}")))
}

/// A kernel output (values, one validity byte per row) as an Arrow array of `ty`.
fn output_array(
    ty: SqlType,
    values: Buffer,
    valid: Buffer,
    rows: usize,
) -> Result<ArrayRef, GpuError> {
    let nulls = NullBuffer::from(
        valid.as_slice()[..rows]
            .iter()
            .map(|&b| b != 0)
            .collect::<Vec<_>>(),
    );
    if ty == SqlType::Boolean {
        let bools: Vec<bool> = values.as_slice()[..rows].iter().map(|&b| b != 0).collect();
        return Ok(Arc::new(BooleanArray::new(bools.into(), Some(nulls))));
    }
    let data = ArrayDataBuilder::new(ty.to_arrow())
        .len(rows)
        .add_buffer(values)
        .nulls(Some(nulls))
        .build()
        .map_err(|e| GpuError::Driver(format!("bad kernel output: {e}")))?;
    Ok(make_array(data))
}

impl ColumnarKernels for GpuKernels {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn evaluate(
        &self,
        expr: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<ArrayRef, KernelError> {
        let rows = batch.num_rows();
        let project = std::slice::from_ref(expr);
        if !matches!(expr, ScalarExpr::Column(_))
            && self.decide(None, Some(project), input_types, rows) == Device::Gpu
        {
            let input = schema_of(input_types);
            let output = schema_of(&[expr.ty(input_types)]);
            match self.calc_gpu(None, Some(project), batch, &input, &output) {
                Ok(Ok(b)) => return Ok(Arc::clone(b.column(0))),
                Ok(Err(e)) => return Err(e),
                Err(e) => self.fallback(&e, None),
            }
        }
        self.cpu.evaluate(expr, batch, input_types)
    }

    fn filter(
        &self,
        predicate: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<RecordBatch, KernelError> {
        let input = schema_of(input_types);
        self.calc_placed(Some(predicate), None, batch, &input, &input, None)
    }

    fn calc(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
    ) -> Result<RecordBatch, KernelError> {
        self.calc_placed(predicate, project, batch, input, output, None)
    }

    fn calc_metered(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
        metrics: &DeviceMetrics,
    ) -> Result<RecordBatch, KernelError> {
        self.calc_placed(predicate, project, batch, input, output, Some(metrics))
    }

    fn partial_aggregate(
        &self,
        batch: &RecordBatch,
        group_by: &[usize],
        aggs: &[AggregateCall],
        input_types: &[SqlType],
        metrics: &DeviceMetrics,
    ) -> Result<RecordBatch, KernelError> {
        if let Some(b) = self.partial_aggregate_gpu(batch, group_by, aggs, input_types, metrics)? {
            return Ok(b);
        }
        self.cpu
            .partial_aggregate(batch, group_by, aggs, input_types, metrics)
    }
}

/// A schema of unnamed columns of these types.
fn schema_of(types: &[SqlType]) -> Schema {
    Schema::new(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| sluice_catalogs::Field::new(format!("c{i}"), *t))
            .collect(),
    )
}
