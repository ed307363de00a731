namespace Sluice.Daemon.Metrics;

/// <summary>Counts REST API requests by route template (bounded), method and status code.</summary>
public static class ApiRequestCounting
{
    private static readonly HashSet<string> Methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"];

    public static Func<HttpContext, RequestDelegate, Task> Middleware(SluiceMetrics metrics) => async (context, next) =>
    {
        try
        {
            await next(context);
        }
        finally
        {
            if (context.Request.Path.StartsWithSegments("/api"))
            {
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
                var method = Methods.Contains(context.Request.Method) ? context.Request.Method : "OTHER";
                metrics.ApiRequests.WithLabels(route, method, context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            }
        }
    };
}
