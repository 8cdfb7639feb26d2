//! The chainloader's header checks and mapping plan, on arbitrary bytes, for
//! both ELF classes (each planned in its own address width). Beyond "no
//! panic": a plan that is accepted never maps anything writable and
//! executable, never wraps or leaves the address space, and its segments are
//! ordered, disjoint and inside the span.
#![no_main]

use chainloader::elf::{self, Arch, Word};
use chainloader::error::render;
use chainloader::machine::{I386, X86_64};
use chainloader::plan::{plan, segment, PROT_EXEC, PROT_WRITE};
use libfuzzer_sys::fuzz_target;

fn check<A: Arch>(data: &[u8]) {
    let size = data.len() as u64;
    let ehdr = match elf::parse_ehdr::<A>(data, size) {
        Ok(e) => e,
        Err(e) => {
            let mut buf = [0u8; 128];
            let line = render(&e, b"3", &mut buf);
            assert!(line.starts_with(b"chainloader: ") && line.ends_with(b"\n"));
            return;
        }
    };
    let start = ehdr.phoff as usize;
    let table = &data[start..start + ehdr.phdr_table_len() as usize];
    for page in [4096u64, 65536] {
        let Ok(p) = plan::<A>(&ehdr, table, size, page) else {
            continue;
        };
        let limit = A::TARGET.addr_limit;
        let (align, span_start, span_len) = (p.align.to_u64(), p.span_start.to_u64(), p.span_len.to_u64());
        assert!(align.is_power_of_two() && align >= page);
        assert!(span_len > 0 && span_start % page == 0 && span_len % page == 0);
        let span_end = span_start.checked_add(span_len).expect("span wraps");
        assert!(span_end <= limit, "span beyond the address space");
        assert!(p.file_extent <= size);
        let mut prev_end = span_start;
        for i in 0..p.phnum {
            let ph = elf::phdr::<A>(table, i);
            if ph.p_type != elf::PT_LOAD {
                continue;
            }
            let s = segment(&ph, A::Word::from_u64(page));
            assert!(
                s.prot & PROT_WRITE == 0 || s.prot & PROT_EXEC == 0,
                "W+X segment planned"
            );
            let (start, file_end, end) = (s.start.to_u64(), s.file_end.to_u64(), s.end.to_u64());
            let (offset, tail) = (s.offset.to_u64(), s.tail.to_u64());
            assert!(start >= prev_end, "segments overlap or are out of order");
            assert!(start <= file_end && file_end <= end && end <= span_end);
            assert!(tail < page);
            assert!(offset % page == 0 && offset + (file_end - start) <= size.next_multiple_of(page));
            prev_end = end;
        }
        let entry = p.entry.to_u64();
        assert!(entry >= span_start && entry < span_end);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<X86_64>(data);
    check::<I386>(data);
});
