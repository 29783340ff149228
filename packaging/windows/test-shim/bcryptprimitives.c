/*
 * TEST-ONLY shim, never packaged: Wine 8.0 (Debian 12) lacks bcryptprimitives.dll,
 * which every Rust 1.78+ Windows program imports for ProcessPrng; without it the
 * program exits at once with code 53. Real Windows 10 and later have the DLL, and
 * Wine has it from 8.13. scripts/windows-env.sh builds this into the Wine prefix the
 * tests use; the .msi holds only tidings.exe and tidingsw.exe.
 */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom == advapi32!SystemFunction036 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
