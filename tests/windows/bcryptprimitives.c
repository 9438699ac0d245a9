/* Wine 8 (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng Rust's std calls for
   randomness on Windows: this stand-in answers it with RtlGenRandom (advapi32). Used only
   by the tests that run the Windows agent under wine. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk; len -= chunk;
    }
    return TRUE;
}
