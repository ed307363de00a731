using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Sluice.Datapath.Interop;

/// <summary>
/// Routes libbpf's own messages (verifier logs, pinning decisions) to an ILogger.
/// libbpf has one process-wide print callback, so this is process-wide too.
/// </summary>
public static unsafe class LibbpfLog
{
    private static ILogger? logger;

    public static void RouteTo(ILogger target)
    {
        logger = target;
        Libbpf.SetPrint((nint)(delegate* unmanaged[Cdecl]<int, nint, nint, int>)&Print);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Print(int level, nint format, nint arguments)
    {
        var target = logger;
        if (target is null)
        {
            return 0;
        }
        // libbpf levels: 0 warn, 1 info, 2 debug.
        var logLevel = level switch { 0 => LogLevel.Warning, 1 => LogLevel.Information, _ => LogLevel.Debug };
        if (!target.IsEnabled(logLevel))
        {
            return 0;
        }
        const int size = 4096;
        var buffer = stackalloc byte[size];
        // On x86-64 a va_list parameter is a pointer, so it can be handed on as is.
        var written = RuntimeInformation.ProcessArchitecture == Architecture.X64
            ? Libc.VsnPrintf((nint)buffer, size, format, arguments)
            : -1;
        var text = written >= 0
            ? Marshal.PtrToStringUTF8((nint)buffer)
            : Marshal.PtrToStringUTF8(format);
        target.Log(logLevel, new EventId(100, "Libbpf"), "libbpf: {Message}", text?.TrimEnd());
        return 0;
    }
}
