"""lxml: XML parsing, XPath and an XSLT transform (libxml2 and libxslt are in the wheel)."""

from lxml import etree

doc = etree.fromstring(
    b"<catalog><book id='1'><title>Dune</title><price>9.99</price></book>"
    b"<book id='2'><title>Emma</title><price>4.50</price></book></catalog>"
)
xslt = etree.XSLT(
    etree.fromstring(
        b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        b'<xsl:output method="text"/><xsl:template match="/"><xsl:for-each select="//book">'
        b'<xsl:sort select="price" data-type="number"/><xsl:value-of select="title"/>;'
        b"</xsl:for-each></xsl:template></xsl:stylesheet>"
    )
)
total = sum(float(p) for p in doc.xpath("//price/text()"))
libxml2 = ".".join(map(str, etree.LIBXML_VERSION))
print(f"lxml {etree.__version__} (libxml2 {libxml2}): titles {doc.xpath('//title/text()')} total {total:.2f}")
print(f"xslt by price: {xslt(doc)}")
