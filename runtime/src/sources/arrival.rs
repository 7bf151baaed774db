//! Decoding where records arrive: a connector that reads records on threads of its own
//! (the HTTP source's request readers) can decode them there, so the pipeline thread
//! only runs them through the pipeline. Raw sources are untyped, so the decoder and
//! its results cross the [`super::RawSource`] boundary type-erased: an
//! [`ArrivalDecoder`] decodes into an [`Arrived`] list, which
//! [`super::Source::poll`] takes back as the typed results of its decoder.

use super::Decoder;
use crate::errors::DecodeError;
use std::any::Any;
use std::ops::Range;

/// What an [`ArrivalDecoder`] made of some records: a
/// `Vec<Result<Option<T>, DecodeError>>` of the source's record type, one per record.
pub type Arrived = Box<dyn Any + Send>;

/// Decoded records of a batch: the indexes of the records (in the batch) and what each
/// decoded to, in order.
pub type ArrivedRun = (Range<usize>, Arrived);

/// A decoder for a connector's own threads, one copy per thread ([`Self::fork`]).
pub trait ArrivalDecoder: Send {
    /// Decodes the records at `ranges` of `body`, in order, into `into`: a list made
    /// earlier is reused (what it held is dropped here, on the connector's thread).
    /// `Err` gives the first record that is not in the format at all (see
    /// [`DecodeError::malformed`]) and why: what `into` holds is then of no use.
    fn decode(
        &mut self,
        body: &[u8],
        ranges: &[Range<usize>],
        into: &mut Option<Arrived>,
    ) -> Result<(), (usize, String)>;
    /// A copy for another thread; `None` when the decoder can no longer be copied
    /// (see [`Decoder::fork`]): that thread leaves decoding to the pipeline.
    fn fork(&self) -> Option<Box<dyn ArrivalDecoder>>;
}

/// The records a [`Decoder`] decodes into: what an [`Arrived`] holds.
pub(super) type Results<D> = Vec<Result<Option<<D as Decoder>::Output>, DecodeError>>;

/// Entry `i` of a list being decoded again, in order: the one there, whose record the
/// decoder may reuse, or a new one at the end.
pub(super) fn slot<T>(list: &mut Vec<Result<Option<T>, DecodeError>>, i: usize) -> &mut Result<Option<T>, DecodeError> {
    if i == list.len() {
        list.push(Ok(None));
    }
    &mut list[i]
}

/// A source's decoder as an [`ArrivalDecoder`]; only decoders that [`Decoder::fork`]
/// (whose results do not depend on the records before) are offered.
pub(super) struct Typed<D: Decoder>(pub D);

impl<D: Decoder> ArrivalDecoder for Typed<D> {
    fn decode(
        &mut self,
        body: &[u8],
        ranges: &[Range<usize>],
        into: &mut Option<Arrived>,
    ) -> Result<(), (usize, String)> {
        if !into.as_ref().is_some_and(|list| list.is::<Results<D>>()) {
            *into = Some(Box::new(Results::<D>::new()));
        }
        let Some(list) = into.as_mut().and_then(|list| list.downcast_mut::<Results<D>>()) else {
            return Ok(());
        };
        for (i, range) in ranges.iter().enumerate() {
            let into = slot(list, i);
            self.0.decode_into(body.get(range.clone()).unwrap_or_default(), into);
            if let Err(e) = into {
                if e.malformed {
                    let reason = std::mem::take(&mut e.reason);
                    list.truncate(i);
                    return Err((i, reason));
                }
            }
        }
        list.truncate(ranges.len());
        Ok(())
    }

    fn fork(&self) -> Option<Box<dyn ArrivalDecoder>> {
        self.0
            .fork()
            .map(|copy| Box::new(Typed(copy)) as Box<dyn ArrivalDecoder>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::JsonDecoder;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Reading {
        n: i64,
    }

    // serde_json reads every line here (the scanner has its own tests).
    impl crate::formats::ScanJson for Reading {}

    fn results(list: &mut Option<Arrived>) -> &mut Results<JsonDecoder<Reading>> {
        list.as_mut()
            .and_then(|l| l.downcast_mut())
            .expect("a list of readings")
    }

    #[test]
    fn decodes_into_a_reused_list_and_stops_at_the_first_line_that_is_not_json() {
        let decoder = Typed(JsonDecoder::<Reading>::new());
        let mut copy = decoder.fork().expect("JSON decoders fork");
        let body = b"{\"n\":1}\n{\"n\":\"x\"}\n{\"n\":3}";
        let mut list = None;
        assert_eq!(copy.decode(body, &[0..7, 8..17, 18..25], &mut list), Ok(()));
        let got = results(&mut list);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Ok(Some(Reading { n: 1 })));
        // Not the schema's: the record's dead letter later, not the body's refusal.
        assert!(got[1].as_ref().is_err_and(|e| !e.malformed), "{:?}", got[1]);
        assert_eq!(got[2], Ok(Some(Reading { n: 3 })));
        // The same list again, what it held dropped.
        assert_eq!(copy.decode(body, std::slice::from_ref(&(18..25)), &mut list), Ok(()));
        assert_eq!(results(&mut list).len(), 1);
        let bad = b"{\"n\":1}\n{\"n\":";
        let refused = copy.decode(bad, &[0..7, 8..13], &mut list);
        assert!(
            matches!(&refused, Err((1, reason)) if reason.contains("EOF")),
            "{refused:?}"
        );
    }
}
