"""Page layouts for `make_extraction_pages.py`: article blocks → the HTML of one kind of site.

Each theme writes code blocks the way its highlighter does (Prism, Rouge, Chroma, Shiki,
SyntaxHighlighter, Pygments, Medium's `<br>` lines …) and wraps the article in its chrome:
navigation, cookie banner, share bars, author boxes, related posts and comments.
"""

from __future__ import annotations

import html
import textwrap

Inline = list[tuple[str, str, str]]  # (kind, text, url): text | code | em | strong | link
Block = tuple  # see make_extraction_pages.py


# ------------------------------------------------------------------------- blocks → HTML

_KEYWORDS = {"def", "return", "import", "from", "class", "if", "else", "for", "in", "with",
             "as", "try", "except", "None", "True", "False", "not", "and", "or", "lambda"}  # fmt: skip
LANGS_DECLARED = {
    "wordpress",
    "ghost",
    "hugo",
    "jekyll",
    "blogger",
    "devto",
    "docs",
    "medium",
    "tailwind",
    "wpcomments",
    "eleventy",
}


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def h_inline(parts: Inline) -> str:
    out = []
    for kind, text, url in parts:
        body = esc(text)
        out.append({"code": f"<code>{body}</code>", "em": f"<em>{body}</em>",
                    "strong": f"<strong>{body}</strong>",
                    "link": f'<a href="{html.escape(url)}">{body}</a>'}.get(kind, body))  # fmt: skip
    return "".join(out)


def tokens_html(line: str) -> str:
    """Syntax-highlighting spans, as highlighters wrap keywords."""
    return " ".join(f'<span class="k">{esc(w)}</span>' if w in _KEYWORDS else esc(w)
                    for w in line.split(" "))  # fmt: skip


def h_code(theme: str, text: str, lang: str) -> str:
    code = textwrap.dedent(text)
    lines = code.split("\n")
    cls = f' class="language-{lang}"' if lang else ""
    if theme == "tailwind":  # rehype-pretty-code (shiki)
        spans = "\n".join(f'<span data-line="">{tokens_html(ln)}</span>' for ln in lines)
        return (
            f'<figure data-rehype-pretty-code-figure=""><pre tabindex="0" data-language="{lang}" '
            f'data-theme="github-dark"><code data-language="{lang}" style="display:grid">{spans}'
            "</code></pre></figure>"
        )
    if theme == "eleventy":  # prism
        toks = "\n".join(map(tokens_html, lines)).replace('class="k"', 'class="token keyword"')
        return f'<pre class="language-{lang or "text"}"><code class="language-{lang or "text"}">{toks}</code></pre>'
    if theme in ("wordpress", "wpcomments"):
        return f'<pre class="wp-block-code"><code{cls}>{esc(code)}</code></pre>'
    if theme == "hugo":
        spans = "".join(f'<span class="line"><span class="cl">{tokens_html(ln)}\n</span></span>'
                        for ln in lines)  # fmt: skip
        return (f'<div class="highlight"><pre tabindex="0" class="chroma"><code{cls} '
                f'data-lang="{lang}">{spans}</code></pre></div>')  # fmt: skip
    if theme == "jekyll":
        return (f'<div class="language-{lang or "plaintext"} highlighter-rouge"><div class="highlight">'
                f'<pre class="highlight"><code>{chr(10).join(map(tokens_html, lines))}\n'
                "</code></pre></div></div>")  # fmt: skip
    if theme == "blogger":
        return f'<pre class="brush: {lang or "plain"};">{esc(code)}</pre>'
    if theme == "devto":
        return (f'<div class="highlight js-code-highlight"><pre class="highlight {lang or "plaintext"}">'
                f"<code>{chr(10).join(map(tokens_html, lines))}\n</code></pre>"
                '<div class="highlight__panel js-actions-panel"><div class="highlight__panel-action '
                'js-fullscreen-code-action"><svg><title>Enter fullscreen mode</title></svg>'
                "<svg><title>Exit fullscreen mode</title></svg></div></div></div>")  # fmt: skip
    if theme == "docs":
        return (
            f'<div class="highlight-{lang or "text"} notranslate"><div class="highlight"><pre>'
            f"<span></span>{chr(10).join(map(tokens_html, lines))}\n</pre>"
            '<button class="copybtn o-tooltip--left" data-tooltip="Copy">Copy</button></div></div>'
        )
    if theme == "medium":
        inner = "<br>".join(tokens_html(ln) for ln in lines)
        return (
            f'<pre class="pn po pp pq pr ps"><span class="pw pc ik pt b" data-code-block-mode="2" '
            f'data-code-block-lang="{lang}" data-selectable-paragraph="">{inner}</span></pre>'
        )
    if theme == "newsletter":
        return f'<pre style="background:#f4f4f4;padding:8px"><code>{esc(code)}</code></pre>'
    return f"<pre><code{cls if theme == 'ghost' else ''}>{esc(code)}</code></pre>"


def h_list(theme: str, block: Block) -> str:
    kind, items = block
    out = []
    for text, subs in items:
        body = f"<p>{h_inline(text)}</p>" if theme == "substack" else h_inline(text)
        out.append(f"<li>{body}{''.join(h_list(theme, s) for s in subs)}</li>")
    return f"<{kind}>{''.join(out)}</{kind}>"


def h_block(theme: str, block: Block) -> str:
    kind = block[0]
    para = (
        '<p class="pw-post-body-paragraph nh ni ik" data-selectable-paragraph="">'
        if (theme == "medium")
        else "<p>"
    )
    if kind == "h":
        return f"<h{block[1]}>{h_inline(block[2])}</h{block[1]}>"
    if kind == "p":
        if theme == "blogger":
            return f"{h_inline(block[1])}<br /><br />"
        return f"{para}{h_inline(block[1])}</p>"
    if kind == "code":
        return h_code(theme, block[1], block[2])
    if kind in ("ul", "ol"):
        return h_list(theme, block)
    if kind == "quote":
        return (
            "<blockquote>" + "".join(f"{para}{h_inline(p)}</p>" for p in block[1]) + "</blockquote>"
        )
    if kind == "table":
        head = "".join(f"<th>{esc(c)}</th>" for c in block[1])
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                       for row in block[2])  # fmt: skip
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    raise ValueError(kind)


# ------------------------------------------------------------------------- page chrome


def comments(fill: list[str], cls: str = "comment") -> str:
    names = ["Ana", "Bo", "Chidi", "Dana"]
    return "".join(f'<li class="{cls}"><div class="{cls}-author">{n} says:</div><p>{esc(t)}</p>'
                   f'<a class="reply" href="#reply">Reply</a></li>' for n, t in zip(names, fill, strict=False))  # fmt: skip


def related(fill: list[str], heading: str) -> str:
    cards = "".join(f'<div class="card"><h3><a href="/p/{i}">{esc(t.split(".")[0][:60])}</a></h3>'
                    f"<p>{esc(t)}</p></div>" for i, t in enumerate(fill))  # fmt: skip
    return f'<section class="related-posts"><h2>{heading}</h2>{cards}</section>'


def page(theme: str, title: str, date: str, blocks: list[Block], fill: list[str], url: str) -> str:
    body = "\n".join(h_block(theme, b) for b in blocks)
    c, r, side = fill[:3], fill[3:5], fill[5:6]
    head = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
            f' – Example Notes</title><meta property="og:title" content="{html.escape(title)}">'
            f'<meta property="og:url" content="{url}"><meta property="article:published_time" '
            f'content="{date}"><script>window.dataLayer=[];</script></head>\n')  # fmt: skip
    cookie = (
        '<div class="cookie-notice" role="dialog"><p>We use cookies to understand how the '
        "site is used. By continuing you agree to this.</p><button>Accept</button></div>"
    )
    nav = '<nav class="site-nav"><a href="/">Home</a> <a href="/archive">Archive</a> <a href="/about">About</a></nav>'
    about = f'<div class="widget about"><h3>About</h3><p>{esc(side[0] if side else "")}</p></div>'
    h1 = f"<h1>{esc(title)}</h1>"
    if theme == "wordpress":
        main = (
            f'<main id="primary" class="site-main"><article class="post type-post hentry">'
            f'<header class="entry-header">{h1}<div class="entry-meta">Posted on <time datetime="{date}">{date[:10]}</time></div></header>'
            f'<div class="entry-content">{body}<div class="sharedaddy"><h3>Share this:</h3><a href="?share=x">X</a></div>'
            f'<div id="jp-relatedposts" class="jp-relatedposts">{related(r, "Related")}</div></div></article>'
            f'<section id="comments" class="comments-area"><h2>4 thoughts on “{esc(title)}”</h2>'
            f'<ol class="comment-list">{comments(c)}</ol></section></main>'
            f'<aside id="secondary" class="widget-area">{about}</aside>'
        )
    elif theme == "ghost":
        main = (
            f'<main id="site-main" class="site-main"><article class="article post">'
            f'<header class="article-header gh-canvas">{h1}<time datetime="{date}">{date[:10]}</time></header>'
            f'<section class="gh-content gh-canvas">{body}</section>'
            f'<section class="footer-cta"><h2>Sign up for more like this.</h2><form><input type="email"></form></section>'
            f'</article><aside class="read-more-wrap">{related(r + c[:1], "Read next")}</aside></main>'
        )
    elif theme == "hugo":
        main = (
            f'<div class="container"><div class="sidebar">{about}<nav id="TableOfContents"><ul>'
            + "".join(f"<li><a>{esc(s)}</a></li>" for s in ("Contents", "Notes"))
            + "</ul></nav></div>"
            f'<div class="post"><div class="post-title">{esc(title)}</div><span class="post-date">{date[:10]}</span>'
            f'<div class="post-content">{body}</div><div class="post-tags"><a href="/tags/python">python</a></div>'
            f'<div class="pagination"><a href="/older">← Older</a> <a href="/newer">Newer →</a></div>'
            f'<div id="disqus_thread"><ul>{comments(c)}</ul></div></div></div>'
        )
    elif theme == "jekyll":
        main = (
            f'<main class="page-content" aria-label="Content"><div class="wrapper"><article class="post h-entry">'
            f'<header class="post-header"><h1 class="post-title p-name">{esc(title)}</h1><p class="post-meta">'
            f'<time class="dt-published" datetime="{date}">{date[:10]}</time></p></header>'
            f'<div class="post-content e-content">{body}</div></article>{related(r, "Also on this blog")}</div></main>'
        )
    elif theme == "blogger":
        main = (
            f'<div class="content-outer"><div class="main-inner"><div class="column-center-inner"><div class="blog-posts hfeed">'
            f'<div class="date-outer"><h2 class="date-header"><span>{date[:10]}</span></h2><div class="post hentry">'
            f'<h3 class="post-title entry-title">{esc(title)}</h3><div class="post-body entry-content">{body}</div>'
            f'<div class="post-footer">Posted by Guido at 10:00 | <a href="#c">4 comments</a></div></div></div>'
            f'<div class="comments" id="comments"><h4>4 comments:</h4><dl id="comments-block">'
            + "".join(f"<dt>Anonymous said...</dt><dd><p>{esc(t)}</p></dd>" for t in c)
            + f'</dl></div></div></div><div class="column-right-inner"><div class="sidebar section">{about}'
            f'<div class="widget BlogArchive"><h2>Blog Archive</h2><ul><li>2002 (12)</li><li>2001 (30)</li></ul></div>'
            f'<div class="widget PopularPosts"><h2>Popular Posts</h2>{related(r, "")}</div></div></div></div></div>'
        )
    elif theme == "devto":
        main = (
            f'<main id="main-content"><aside class="crayons-layout__sidebar-left"><div class="reaction-drawer">'
            f"<button>Like</button> <span>212</span><button>Save</button></div></aside>"
            f'<article class="crayons-card" id="main-article"><header class="crayons-article__header">'
            f'<div class="crayons-article__subheader">Posted on <time datetime="{date}">{date[:10]}</time></div>'
            f'<h1 class="fs-3xl">{esc(title)}</h1><div class="spec__tags"><a>#python</a> <a>#debugging</a></div></header>'
            f'<div class="crayons-article__main"><div class="crayons-article__body text-styles spec__body" id="article-body">'
            f'{body}</div></div><section id="comments"><h2>Top comments (4)</h2>'
            + "".join(f'<div class="comment__body text-styles"><p>{esc(t)}</p></div>' for t in c)
            + f'</section></article><aside class="crayons-layout__sidebar-right">{related(r, "Read next")}</aside></main>'
        )
    elif theme == "docs":
        links = "".join(f'<li class="toctree-l1"><a class="reference internal" href="/n/{i}">{esc(t[:50])}</a></li>'
                        for i, t in enumerate(fill))  # fmt: skip
        main = (
            f'<div class="sphinxsidebar" role="navigation"><h3>Navigation</h3><ul>{links}</ul>'
            f'<div role="search"><input type="text" name="q"></div></div>'
            f'<div class="document"><div class="body" role="main"><section id="page">{h1}{body}</section></div></div>'
            f'<div class="related" role="navigation"><a href="/prev">previous</a> | <a href="/next">next</a></div>'
        )
    elif theme == "newsletter":
        main = (
            f'<table class="bodyTable" width="100%"><tr><td><table class="templateContainer"><tr>'
            f'<td class="preheader"><p>View this email in your browser</p></td></tr>'
            f'<tr><td class="mcnTextContent">{h1}{body}</td></tr><tr><td class="mcnTextContent">'
            f"<h3>Elsewhere this week</h3>{''.join(f'<p>{esc(t)}</p>' for t in r)}</td></tr>"
            f'<tr><td class="footerContent"><p>You are receiving this email because you opted in.'
            f' <a href="/unsubscribe">Unsubscribe</a> · <a href="/forward">Forward to a friend</a></p></td></tr>'
            f"</table></td></tr></table>"
        )
    elif theme == "medium":
        main = (
            f'<div class="speechify-ignore ab cp"><a data-testid="headerSignUpButton">Sign up</a></div><article>'
            f'<div class="speechify-ignore ab cp"><p class="be b">Member-only story</p></div><h1 data-testid="storyTitle" '
            f'class="pw-post-title">{esc(title)}</h1><div class="speechify-ignore ab cp"><span data-testid="storyReadTime">'
            f'9 min read</span><button data-testid="headerClapButton">341</button></div><section>{body}</section>'
            f'<div class="speechify-ignore"><h2>Written by Pep Author</h2><p>{esc(side[0] if side else "")}</p></div>'
            f'</article><div class="speechify-ignore"><h2>More from Pep Author</h2>{related(r, "")}</div>'
            f'<div class="speechify-ignore"><h2>Responses (4)</h2><ul>{comments(c)}</ul></div>'
        )
    elif theme == "substack":
        main = (
            f'<article class="typography newsletter-post post"><div class="post-header"><h1 class="post-title">'
            f'{esc(title)}</h1><div class="post-ufi"><div class="label">57</div><div class="label">Share</div></div></div>'
            f'<div class="available-content"><div dir="auto" class="body markup">{body}'
            f'<div class="subscription-widget-wrap"><p class="cta-caption">Thanks for reading! Subscribe for free to '
            f'receive new posts.</p><form><input type="email"></form></div></div></div></article>'
            f'<div class="comments-page"><h4>Discussion about this post</h4><ul>{comments(c)}</ul></div>'
            f'<div class="post-footer">{related(r, "Ready for more?")}</div>'
        )
    elif theme == "tailwind":
        links = "".join(f'<a class="text-sm text-gray-500 hover:text-gray-900" href="/t/{i}">{esc(t[:40])}</a>'
                        for i, t in enumerate(r))  # fmt: skip
        main = (
            f'<div class="mx-auto max-w-3xl px-4"><div class="flex justify-between py-6"><a class="font-bold" '
            f'href="/">Notes</a><div class="flex gap-4"><a href="/blog">Blog</a><a href="/projects">Projects</a>'
            f'</div></div><div class="py-8"><div class="text-3xl font-extrabold">{esc(title)}</div>'
            f'<div class="text-gray-500">{date[:10]} · 12 min</div></div>'
            f'<div class="prose dark:prose-invert max-w-none">{body}</div>'
            f'<div class="mt-10 rounded border p-6"><div class="font-bold">Get new posts by email</div>'
            f'<div class="text-gray-600">One email a month, no spam. Unsubscribe any time.</div></div>'
            f'<div class="mt-10 border-t pt-6"><div class="font-bold">3 Comments</div>'
            + "".join(
                f'<div class="mt-4"><div class="text-sm font-semibold">{n}</div><div class="text-gray-700">'
                f"{esc(t)}</div></div>"
                for n, t in zip(("Ana", "Bo", "Chidi"), c, strict=False)
            )
            + f'</div><div class="mt-10 grid grid-cols-2 gap-4">{links}</div></div>'
        )
    elif theme == "wpcomments":
        main = (
            f'<main id="main" class="site-main"><article class="post type-post">'
            f'<header class="entry-header">{h1}<span class="posted-on"><time datetime="{date}">{date[:10]}</time></span></header>'
            f'<div class="entry-content">{body}</div><div class="post-author-box"><h4>About the author</h4>'
            f"<p>{esc(side[0] if side else '')}</p></div>"
            f'<div id="comments"><h3 class="comments-heading">Join the conversation</h3><ol>'
            + "".join(
                f'<li><article id="div-comment-{i}" class="comment-body"><footer class="comment-meta">'
                f'<b class="fn">{n}</b> on {date[:10]}</footer><div class="comment-content"><p>{esc(t)}</p>'
                f"</div></article></li>"
                for i, (n, t) in enumerate(zip(("Ana", "Bo", "Chidi"), c, strict=False))
            )
            + '</ol></div></article><div class="wp-block-query"><h2>More from the blog</h2>'
            + "".join(
                f'<article class="wp-block-post"><h3><a href="/m/{i}">{esc(t[:50])}</a></h3><p>{esc(t)}</p>'
                f"</article>"
                for i, t in enumerate(r)
            )
            + "</div></main>"
        )
    elif theme == "eleventy":
        toc = "".join(
            f"<li><a href='#s{i}'>{esc(''.join(t for _, t, _ in b[2]))}</a></li>"
            for i, b in enumerate(blocks)
            if b[0] == "h"
        )
        main = (
            f'<main id="skip"><article><h1>{esc(title)}</h1><p class="post-metadata"><time datetime="{date}">'
            f'{date[:10]}</time></p><nav class="table-of-contents" aria-label="Contents"><ol>{toc}</ol></nav>'
            f'{body}<div class="about-the-author"><img src="/me.jpg" alt=""><p>{esc(side[0] if side else "")}</p></div>'
            f'</article><ul class="links-nextprev"><li>Previous: <a href="/p">{esc(r[0][:40] if r else "")}</a></li>'
            f"</ul></main>"
        )
    else:  # linkedin pulse
        main = (
            f'<main class="main"><article class="article-main"><h1 class="pulse-title">{esc(title)}</h1>'
            f'<div class="publisher-author-card"><h3>Pep Author</h3><p>Python core developer</p>'
            f'<button>Follow</button></div><div class="article-main__content" data-test-id="article-content-blocks">'
            f'{body}</div><div class="social-details"><span>118 Reactions</span> <span>9 Comments</span></div>'
            f'</article><section class="comments"><ul>{comments(c)}</ul></section>'
            f'<section class="more-articles">{related(r, "More articles by Pep Author")}</section></main>'
        )
    top = "" if theme in ("newsletter", "medium", "tailwind") else cookie + nav
    foot = '<footer class="site-footer"><p>© 2024 Example Notes. All rights reserved.</p></footer>'
    return f"{head}<body>{top}{main}{foot}</body></html>\n"
