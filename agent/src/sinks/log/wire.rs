//! The compact per-process and per-thread rows of an interval record, hand-encoded:
//! a flag word says which values are stored and which are derived (predicted from
//! CPU time, zero, a sum), so a typical row is a few bytes. Integers are LEB128.
//! Exactness is the encoder's job (`convert.rs`): it marks a value derived only
//! when deriving it gives back the very same bits.
use bincode::de::read::Reader;
use bincode::de::{Decode, Decoder};
use bincode::enc::write::Writer;
use bincode::enc::{Encode, Encoder};
use bincode::error::{DecodeError, EncodeError};

use crate::model::ns_to_s;

/// On-CPU seconds: exactly `ns / 1e9` for an integer `ns` (the ledger's unit), or
/// any other f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Secs {
    Ns(u64),
    Float(f64),
}

impl Secs {
    pub fn from_seconds(seconds: f64) -> Secs {
        exact_ns(seconds).map_or(Secs::Float(seconds), Secs::Ns)
    }

    pub fn seconds(self) -> f64 {
        match self {
            Secs::Ns(ns) => ns_to_s(ns),
            Secs::Float(seconds) => seconds,
        }
    }

    pub fn ns(self) -> Option<u64> {
        match self {
            Secs::Ns(ns) => Some(ns),
            Secs::Float(_) => None,
        }
    }
}

/// The integer ns whose `ns_to_s` is exactly `seconds`, if there is one.
fn exact_ns(seconds: f64) -> Option<u64> {
    if !(0.0..1e10).contains(&seconds) {
        return None;
    }
    let guess = (seconds * 1e9).round() as u64;
    [guess, guess.saturating_sub(1), guess + 1]
        .into_iter()
        .find(|&ns| ns_to_s(ns).to_bits() == seconds.to_bits())
}

/// An energy value in a row: stored, zero, or the prediction from CPU time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Energy {
    Predicted,
    Zero,
    Value(f64),
}

/// How a process's threads are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThreadsForm {
    /// The model had no thread rows.
    None,
    /// One thread, derived entirely from its process (tid = pid, same name and time).
    Mirror,
    /// The next n entries of `IntervalRecord::threads`.
    Rows(u32),
}

/// GPU activity seen by the eBPF probes in one interval (docs/gpu-probes.md);
/// rows store it only when some count is not zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuActivity {
    pub ctx_switches: u64,
    pub launches: u64,
    pub sync_wait: Secs,
    pub ioctls: u64,
}

/// One process in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRow {
    /// `ProcessMeta::id` in this segment.
    pub meta: u32,
    pub exited: bool,
    pub cpu: Secs,
    /// `None`: one package, the same as `cpu`.
    pub by_package: Option<Vec<Secs>>,
    pub cpu_j: Energy,
    pub dram_j: Energy,
    /// `None`: 0.
    pub gpu_j: Option<f64>,
    /// `None`: `cpu_j + dram_j + gpu_j`.
    pub joules: Option<f64>,
    /// `None`: `joules` at the interval's intensity.
    pub gco2: Option<f64>,
    pub threads: ThreadsForm,
    /// `None`: no GPU activity.
    pub gpu: Option<GpuActivity>,
}

/// One thread of a process in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadRow {
    /// tid − pid.
    pub tid_offset: i64,
    pub exited: bool,
    pub cpu: Secs,
    /// Index into the segment's thread names; `None`: the process's comm.
    pub comm: Option<u32>,
    /// `None`: predicted from its CPU time.
    pub joules: Option<f64>,
    /// `None`: `joules` at the interval's intensity.
    pub gco2: Option<f64>,
    /// `None`: no GPU activity.
    pub gpu: Option<GpuActivity>,
}

const P_THREADS: u32 = 0b11;
const P_DRAM_SHIFT: u32 = 2;
const P_CPU_SHIFT: u32 = 4;
const P_EXITED: u32 = 1 << 6;
const P_PACKAGES: u32 = 1 << 7;
const P_GPU: u32 = 1 << 8;
const P_JOULES: u32 = 1 << 9;
const P_GCO2: u32 = 1 << 10;
const P_GPU_ACTIVITY: u32 = 1 << 11;
const P_KNOWN: u32 = (1 << 12) - 1;

/// More CPU packages than any machine has: a corrupt count.
const MAX_PACKAGES: u32 = 4096;

const T_EXITED: u32 = 1;
const T_COMM: u32 = 1 << 1;
const T_JOULES: u32 = 1 << 2;
const T_GCO2: u32 = 1 << 3;
const T_GPU_ACTIVITY: u32 = 1 << 4;
const T_KNOWN: u32 = (1 << 5) - 1;

impl Encode for ProcRow {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        let threads = match self.threads {
            ThreadsForm::None => 0,
            ThreadsForm::Mirror => 1,
            ThreadsForm::Rows(_) => 2,
        };
        let flags = threads
            | energy_bits(self.dram_j, [Energy::Zero, Energy::Predicted]) << P_DRAM_SHIFT
            | energy_bits(self.cpu_j, [Energy::Predicted, Energy::Zero]) << P_CPU_SHIFT
            | bit(self.exited, P_EXITED)
            | bit(self.by_package.is_some(), P_PACKAGES)
            | bit(self.gpu_j.is_some(), P_GPU)
            | bit(self.joules.is_some(), P_JOULES)
            | bit(self.gco2.is_some(), P_GCO2)
            | bit(self.gpu.is_some(), P_GPU_ACTIVITY);
        let w = e.writer();
        put_uleb(w, u64::from(flags))?;
        put_uleb(w, u64::from(self.meta))?;
        put_secs(w, self.cpu)?;
        if let Some(list) = &self.by_package {
            put_uleb(w, list.len() as u64)?;
            for secs in list {
                put_secs(w, *secs)?;
            }
        }
        for value in [self.cpu_j, self.dram_j] {
            if let Energy::Value(v) = value {
                put_f64(w, v)?;
            }
        }
        for v in [self.gpu_j, self.joules, self.gco2].into_iter().flatten() {
            put_f64(w, v)?;
        }
        if let ThreadsForm::Rows(n) = self.threads {
            put_uleb(w, u64::from(n))?;
        }
        put_gpu(w, self.gpu)
    }
}

impl<C> Decode<C> for ProcRow {
    fn decode<D: Decoder<Context = C>>(d: &mut D) -> Result<Self, DecodeError> {
        let r = d.reader();
        let flags = get_u32(r)?;
        if flags & !P_KNOWN != 0 || flags & P_THREADS == 3 {
            return Err(DecodeError::Other("unknown process row flags"));
        }
        let meta = get_u32(r)?;
        let cpu = get_secs(r)?;
        let by_package = if flags & P_PACKAGES != 0 {
            let n = get_u32(r)?;
            if n > MAX_PACKAGES {
                return Err(DecodeError::Other("more packages than a machine has"));
            }
            Some((0..n).map(|_| get_secs(r)).collect::<Result<_, _>>()?)
        } else {
            None
        };
        let cpu_j = get_energy(r, flags >> P_CPU_SHIFT, [Energy::Predicted, Energy::Zero])?;
        let dram_j = get_energy(r, flags >> P_DRAM_SHIFT, [Energy::Zero, Energy::Predicted])?;
        let gpu_j = get_opt_f64(r, flags & P_GPU != 0)?;
        let joules = get_opt_f64(r, flags & P_JOULES != 0)?;
        let gco2 = get_opt_f64(r, flags & P_GCO2 != 0)?;
        let threads = match flags & P_THREADS {
            0 => ThreadsForm::None,
            1 => ThreadsForm::Mirror,
            _ => ThreadsForm::Rows(get_u32(r)?),
        };
        let gpu = get_gpu(r, flags & P_GPU_ACTIVITY != 0)?;
        Ok(ProcRow {
            meta,
            exited: flags & P_EXITED != 0,
            cpu,
            by_package,
            cpu_j,
            dram_j,
            gpu_j,
            joules,
            gco2,
            threads,
            gpu,
        })
    }
}
bincode::impl_borrow_decode!(ProcRow);

impl Encode for ThreadRow {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        let flags = bit(self.exited, T_EXITED)
            | bit(self.comm.is_some(), T_COMM)
            | bit(self.joules.is_some(), T_JOULES)
            | bit(self.gco2.is_some(), T_GCO2)
            | bit(self.gpu.is_some(), T_GPU_ACTIVITY);
        let w = e.writer();
        put_uleb(w, u64::from(flags))?;
        put_uleb(w, zigzag(self.tid_offset))?;
        put_secs(w, self.cpu)?;
        if let Some(comm) = self.comm {
            put_uleb(w, u64::from(comm))?;
        }
        for v in [self.joules, self.gco2].into_iter().flatten() {
            put_f64(w, v)?;
        }
        put_gpu(w, self.gpu)
    }
}

impl<C> Decode<C> for ThreadRow {
    fn decode<D: Decoder<Context = C>>(d: &mut D) -> Result<Self, DecodeError> {
        let r = d.reader();
        let flags = get_u32(r)?;
        if flags & !T_KNOWN != 0 {
            return Err(DecodeError::Other("unknown thread row flags"));
        }
        let tid_offset = unzigzag(get_uleb(r)?);
        let cpu = get_secs(r)?;
        let comm = if flags & T_COMM != 0 {
            Some(get_u32(r)?)
        } else {
            None
        };
        Ok(ThreadRow {
            tid_offset,
            exited: flags & T_EXITED != 0,
            cpu,
            comm,
            joules: get_opt_f64(r, flags & T_JOULES != 0)?,
            gco2: get_opt_f64(r, flags & T_GCO2 != 0)?,
            gpu: get_gpu(r, flags & T_GPU_ACTIVITY != 0)?,
        })
    }
}
bincode::impl_borrow_decode!(ThreadRow);

fn put_gpu<W: Writer>(w: &mut W, gpu: Option<GpuActivity>) -> Result<(), EncodeError> {
    let Some(g) = gpu else {
        return Ok(());
    };
    put_uleb(w, g.ctx_switches)?;
    put_uleb(w, g.launches)?;
    put_secs(w, g.sync_wait)?;
    put_uleb(w, g.ioctls)
}

fn get_gpu<R: Reader>(r: &mut R, present: bool) -> Result<Option<GpuActivity>, DecodeError> {
    if !present {
        return Ok(None);
    }
    Ok(Some(GpuActivity {
        ctx_switches: get_uleb(r)?,
        launches: get_uleb(r)?,
        sync_wait: get_secs(r)?,
        ioctls: get_uleb(r)?,
    }))
}

fn bit(set: bool, mask: u32) -> u32 {
    if set { mask } else { 0 }
}

/// 0 and 1 for the two implicit forms in `order`, 2 for a stored value.
fn energy_bits(value: Energy, order: [Energy; 2]) -> u32 {
    match value {
        Energy::Value(_) => 2,
        v if v == order[0] => 0,
        _ => 1,
    }
}

fn get_energy<R: Reader>(r: &mut R, bits: u32, order: [Energy; 2]) -> Result<Energy, DecodeError> {
    match bits & 0b11 {
        0 => Ok(order[0]),
        1 => Ok(order[1]),
        2 => Ok(Energy::Value(get_f64(r)?)),
        _ => Err(DecodeError::Other("unknown energy form")),
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_uleb<W: Writer>(w: &mut W, mut v: u64) -> Result<(), EncodeError> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    w.write(&buf[..n])
}

fn get_uleb<R: Reader>(r: &mut R) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        r.read(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::Other("LEB128 integer longer than 64 bits"))
}

fn get_u32<R: Reader>(r: &mut R) -> Result<u32, DecodeError> {
    u32::try_from(get_uleb(r)?).map_err(|_| DecodeError::Other("integer above u32"))
}

fn put_f64<W: Writer>(w: &mut W, v: f64) -> Result<(), EncodeError> {
    w.write(&v.to_le_bytes())
}

fn get_f64<R: Reader>(r: &mut R) -> Result<f64, DecodeError> {
    let mut bytes = [0u8; 8];
    r.read(&mut bytes)?;
    Ok(f64::from_le_bytes(bytes))
}

fn get_opt_f64<R: Reader>(r: &mut R, present: bool) -> Result<Option<f64>, DecodeError> {
    if present {
        get_f64(r).map(Some)
    } else {
        Ok(None)
    }
}

/// `ns << 1`, or `1` followed by the f64.
fn put_secs<W: Writer>(w: &mut W, secs: Secs) -> Result<(), EncodeError> {
    match secs {
        Secs::Ns(ns) if ns < 1 << 63 => put_uleb(w, ns << 1),
        _ => {
            put_uleb(w, 1)?;
            put_f64(w, secs.seconds())
        }
    }
}

fn get_secs<R: Reader>(r: &mut R) -> Result<Secs, DecodeError> {
    match get_uleb(r)? {
        1 => Ok(Secs::Float(get_f64(r)?)),
        v if v & 1 == 0 => Ok(Secs::Ns(v >> 1)),
        _ => Err(DecodeError::Other("unknown seconds form")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ns_round_trips_only_when_exact() {
        for ns in [0u64, 1, 999, 1_000_000_007, 3_600_000_000_123] {
            assert_eq!(exact_ns(ns_to_s(ns)), Some(ns), "{ns}");
        }
        for s in [-0.0, -1.0, f64::NAN, f64::INFINITY, 0.1 + 0.2, 1e12] {
            let back = exact_ns(s).map(ns_to_s);
            assert!(back.is_none_or(|b| b.to_bits() == s.to_bits()), "{s}");
        }
        assert_eq!(exact_ns(-0.0), None);
    }

    #[test]
    fn zigzag_and_leb_round_trip() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        let mut out = Vec::new();
        let mut w = bincode::enc::write::SliceWriter::new(&mut []);
        assert!(put_uleb(&mut w, 1).is_err(), "a full writer errors");
        for v in [0u64, 127, 128, 300, u64::MAX] {
            let mut enc = Vec::new();
            let mut writer = VecWriter(&mut enc);
            put_uleb(&mut writer, v).unwrap();
            out.push(enc.len());
            let mut r = bincode::de::read::SliceReader::new(&enc);
            assert_eq!(get_uleb(&mut r).unwrap(), v);
        }
        assert_eq!(out, vec![1, 1, 2, 2, 10]);
    }

    struct VecWriter<'a>(&'a mut Vec<u8>);
    impl Writer for VecWriter<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
    }
}
