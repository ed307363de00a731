using Microsoft.AspNetCore.Diagnostics;
using Sluice.Datapath.Programming;

namespace Sluice.Daemon.Api;

/// <summary>
/// A change the datapath cannot hold (a map at its configured capacity) is the writer's
/// problem to see, not a 500: 507 with what is full. The reconciler has already put back
/// the state in force, so nothing changed.
/// </summary>
public sealed class DatapathErrorHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not DatapathFullException full)
        {
            return false;
        }
        context.Response.StatusCode = StatusCodes.Status507InsufficientStorage;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = 507, Title = "Datapath full", Detail = $"{full.Message}; nothing was changed. Raise the limit in the config and restart sluiced." },
        });
    }
}
