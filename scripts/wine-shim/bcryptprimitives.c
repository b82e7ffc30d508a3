/* TEST-ONLY shim for running dirsync.exe under Wine 8 (Debian 12), which lacks
 * bcryptprimitives.dll: Rust's standard library imports ProcessPrng from it. This exports
 * ProcessPrng and fills the buffer with RtlGenRandom (advapi32's SystemFunction036).
 * It is placed next to the .exe only for the CI smoke test and never ships in a release. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
