namespace Sluice.Daemon.Api;

/// <summary>Every /api route needs <c>Authorization: Bearer TOKEN</c>; anything else is a 401 problem.</summary>
public sealed class BearerTokenFilter(ApiToken token) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var header = context.HttpContext.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) && token.Matches(header[scheme.Length..].Trim()))
        {
            return next(context);
        }
        context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
        return ValueTask.FromResult<object?>(Results.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: "Unauthorized",
            detail: header.Length == 0 ? "an Authorization: Bearer token is required" : "the bearer token is not valid"));
    }
}
